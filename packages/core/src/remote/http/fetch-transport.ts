import { NetworkError, TimeoutError } from '../../errors/upsync-error.ts';
import {
  describeUrl,
  openBody,
  parseJsonBody,
  type HttpRequest,
  type HttpResponse,
  type HttpTransport,
} from './http-transport.ts';
import { errorCodeOf, safeCause } from './safe-cause.ts';

export interface FetchTransportOptions {
  /** Default globalThis.fetch. */
  fetch?: typeof fetch;
}

async function collect(source: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of source) {
    chunks.push(chunk);
    size += chunk.byteLength;
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

/** Maps what fetch throws to upsync's errors; the caller's abort keeps its reason. */
function mapError(error: unknown, request: HttpRequest, phase: string): unknown {
  if (request.signal?.aborted) return request.signal.reason;
  const what = `${request.method} ${describeUrl(request.url)}`;
  const name = (error as { name?: unknown } | null)?.name;
  if (name === 'TimeoutError') {
    return new TimeoutError(`${what} timed out ${phase}`, 0, { cause: safeCause(error) });
  }
  if (name === 'AbortError') return error;
  // fetch reports every network failure as a TypeError; its cause has the code.
  const code = errorCodeOf(error);
  return new NetworkError(`${what} failed ${phase}${code ? ` (${code})` : ''}`, {
    cause: safeCause(error),
  });
}

/**
 * An HttpTransport on the global fetch, for browsers and service workers.
 * A streamed request body is read into memory first: browsers stream uploads
 * only over HTTP/2 with `duplex: 'half'`, and Node's fetch buffers them anyway.
 * In Node, use the undici transport of @upsync/node (pooled and streaming).
 */
export function fetchTransport(options: FetchTransportOptions = {}): HttpTransport {
  const fetchFn = options.fetch ?? globalThis.fetch;
  if (typeof fetchFn !== 'function') {
    throw new TypeError(`fetch must be a function, got ${typeof fetchFn}`);
  }
  return async (request) => {
    request.signal?.throwIfAborted();
    let response: Response;
    try {
      const opened = request.body === undefined ? undefined : openBody(request.body);
      const body =
        opened === undefined || opened instanceof Uint8Array ? opened : await collect(opened);
      const headers = { ...request.headers };
      // fetch computes it from the body and refuses some values of its own.
      delete headers['content-length'];
      response = await fetchFn(request.url, {
        method: request.method,
        headers,
        ...(body === undefined ? {} : { body: body as Uint8Array<ArrayBuffer> }),
        ...(request.signal ? { signal: request.signal } : {}),
        redirect: 'manual',
      });
    } catch (error) {
      throw mapError(error, request, 'before an answer');
    }
    const headers: Record<string, string> = {};
    response.headers.forEach((value, name) => {
      headers[name.toLowerCase()] = value;
    });
    const text = async (): Promise<string> => {
      try {
        return await response.text();
      } catch (error) {
        throw mapError(error, request, 'while reading the answer');
      }
    };
    const answer: HttpResponse = {
      status: response.status,
      headers,
      text,
      json: async () =>
        parseJsonBody(await text(), `${request.method} ${describeUrl(request.url)}`),
      dump: async () => {
        try {
          await response.body?.cancel();
        } catch {
          // Discarding is best effort: the body is gone either way.
        }
      },
    };
    return answer;
  };
}
