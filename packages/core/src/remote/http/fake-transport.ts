// A scripted HttpTransport for tests: answers come from a handler, requests are recorded.
import type { HttpRequest, HttpResponse, HttpTransport } from './http-transport.ts';

export interface FakeAnswer {
  status: number;
  headers?: Record<string, string>;
  /** A string is sent as is; anything else as JSON. */
  body?: unknown;
}

export interface FakeResponse extends HttpResponse {
  /** Whether text(), json() or dump() was called. */
  readonly settled: boolean;
}

export function fakeResponse(answer: FakeAnswer): FakeResponse {
  const text =
    answer.body === undefined
      ? ''
      : typeof answer.body === 'string'
        ? answer.body
        : JSON.stringify(answer.body);
  let settled = false;
  return {
    status: answer.status,
    headers: answer.headers ?? {},
    get settled() {
      return settled;
    },
    text: () => {
      settled = true;
      return Promise.resolve(text);
    },
    json: () => {
      settled = true;
      return Promise.resolve(JSON.parse(text) as unknown);
    },
    dump: () => {
      settled = true;
      return Promise.resolve();
    },
  };
}

export type FakeHandler = (request: HttpRequest, index: number) => FakeAnswer | Promise<FakeAnswer>;

/** A transport whose answers come from `handler`; every request and response is kept. */
export class FakeTransport {
  readonly requests: HttpRequest[] = [];
  readonly responses: FakeResponse[] = [];
  #handler: FakeHandler;

  constructor(handler: FakeHandler = () => ({ status: 200 })) {
    this.#handler = handler;
  }

  /** Answers in turn; the last one repeats. */
  static sequence(...answers: (FakeAnswer | Error)[]): FakeTransport {
    return new FakeTransport((_request, index) => {
      const answer = answers[Math.min(index, answers.length - 1)];
      if (answer instanceof Error) throw answer;
      return answer ?? { status: 200 };
    });
  }

  readonly send: HttpTransport = async (request) => {
    const index = this.requests.length;
    this.requests.push(request);
    request.signal?.throwIfAborted();
    const response = fakeResponse(await this.#handler(request, index));
    this.responses.push(response);
    return response;
  };
}

/** A transport that never answers; it rejects with the signal's reason on abort. */
export const hangingTransport: HttpTransport = (request) =>
  new Promise((_resolve, reject) => {
    const { signal } = request;
    if (signal?.aborted) reject(signal.reason as Error);
    signal?.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
  });

/** Every string reachable from a value: what any logger or serializer could print. */
export function everyString(value: unknown, seen = new Set<unknown>()): string {
  if (typeof value === 'string') return value;
  if (typeof value !== 'object' || value === null || seen.has(value)) return String(value);
  seen.add(value);
  const parts: string[] = [];
  if (value instanceof Error)
    parts.push(value.message, value.stack ?? '', everyString(value.cause, seen));
  for (const key of Reflect.ownKeys(value)) {
    parts.push(String(key), everyString((value as Record<string | symbol, unknown>)[key], seen));
  }
  try {
    parts.push(JSON.stringify(value) ?? '');
  } catch {
    // cycles
  }
  return parts.join('\n');
}
