import { NetworkError, TimeoutError } from '@upsync/core';
import {
  describeUrl,
  errorCodeOf,
  openBody,
  parseJsonBody,
  safeCause,
  type HttpRequest,
  type HttpResponse,
  type HttpTransport,
} from '@upsync/core';
import { Readable } from 'node:stream';
import { Agent, request as undiciRequest, type Dispatcher } from 'undici';

export interface UndiciTransportOptions {
  /** Connections per origin. Default 32: above the default concurrency ceiling of 16. */
  connections?: number;
  /** How long an idle connection is kept for reuse. Default 10_000. */
  keepAliveTimeoutMs?: number;
  /** A dispatcher to use instead of an own Agent (not closed by close()). */
  dispatcher?: Dispatcher;
}

const TIMEOUT_CODES: ReadonlySet<string> = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
]);

// Failures of the connection or the exchange: the request got no (complete) answer.
const NETWORK_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_DESTROYED',
  'UND_ERR_INFO',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'HPE_INVALID_CONSTANT',
]);

/**
 * Maps what undici throws to upsync's errors. The cause is a copy of the
 * original that keeps its name, message, code and stack but not the request
 * (undici errors can hold its headers, Authorization included).
 */
function mapError(error: unknown, request: HttpRequest, phase: string): unknown {
  if (request.signal?.aborted) return request.signal.reason;
  const what = `${request.method} ${describeUrl(request.url)}`;
  const code = errorCodeOf(error);
  const cause = safeCause(error);
  if (code !== undefined && TIMEOUT_CODES.has(code)) {
    return new TimeoutError(`${what} timed out ${phase} (${code})`, 0, { cause });
  }
  const message = error instanceof Error ? error.message : '';
  if (
    (code !== undefined && (NETWORK_CODES.has(code) || code.startsWith('UND_ERR_SOCKET'))) ||
    /socket hang up|other side closed/i.test(message)
  ) {
    return new NetworkError(`${what} failed ${phase} (${code ?? message})`, { cause });
  }
  // Not a network failure: a bad argument or a bug. Passed on, cleaned, so it is not retried.
  return cause;
}

/**
 * An HttpTransport on undici's `request` API with a keep-alive pool: in Node
 * it carries several times the requests per second of the global fetch, and it
 * streams request bodies (undici's fetch buffers a streamed body first).
 */
export class UndiciTransport {
  readonly #dispatcher: Dispatcher;
  readonly #owned: Agent | undefined;

  constructor(options: UndiciTransportOptions = {}) {
    const connections = options.connections ?? 32;
    const keepAliveTimeoutMs = options.keepAliveTimeoutMs ?? 10_000;
    if (!Number.isInteger(connections) || connections < 1) {
      throw new TypeError(`connections must be an integer >= 1, got ${String(connections)}`);
    }
    if (!Number.isFinite(keepAliveTimeoutMs) || keepAliveTimeoutMs < 0) {
      throw new TypeError(
        `keepAliveTimeoutMs must be a number >= 0, got ${String(keepAliveTimeoutMs)}`,
      );
    }
    if (options.dispatcher) {
      this.#dispatcher = options.dispatcher;
    } else {
      // Deadlines are the timeout middleware's (one clock, testable); undici's
      // own 300 s header and body timeouts stay as a backstop.
      this.#owned = new Agent({ connections, keepAliveTimeout: keepAliveTimeoutMs });
      this.#dispatcher = this.#owned;
    }
  }

  /** The transport function, bound to this pool. */
  readonly send: HttpTransport = async (request) => {
    request.signal?.throwIfAborted();
    let answer: Dispatcher.ResponseData;
    try {
      const opened = request.body === undefined ? undefined : openBody(request.body);
      // A Readable streams the body as it is produced; undici's fetch would buffer it.
      const body =
        opened === undefined || opened instanceof Uint8Array
          ? opened
          : Readable.from(opened, { objectMode: false });
      answer = await undiciRequest(request.url, {
        dispatcher: this.#dispatcher,
        method: request.method,
        headers: request.headers,
        ...(body === undefined ? {} : { body }),
        ...(request.signal ? { signal: request.signal } : {}),
      });
    } catch (error) {
      throw mapError(error, request, 'before an answer');
    }
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(answer.headers)) {
      if (value !== undefined)
        headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
    }
    const text = async (): Promise<string> => {
      try {
        return await answer.body.text();
      } catch (error) {
        throw mapError(error, request, 'while reading the answer');
      }
    };
    const response: HttpResponse = {
      status: answer.statusCode,
      headers,
      text,
      json: async () =>
        parseJsonBody(await text(), `${request.method} ${describeUrl(request.url)}`),
      dump: async () => {
        try {
          await answer.body.dump();
        } catch {
          // Discarding is best effort: the body is gone either way.
        }
      },
    };
    return response;
  };

  /** Closes the pool once requests in flight finish (only a pool this transport made). */
  async close(): Promise<void> {
    await this.#owned?.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
