import { ProtocolError } from '../../errors/upsync-error.ts';
import { safeCause } from './safe-cause.ts';

/**
 * A request body. Bytes and a function that opens the body can be sent again
 * (a retry, a 401 refresh); a bare AsyncIterable is read once, so a request
 * carrying one is never retried.
 */
export type HttpBody = Uint8Array | (() => AsyncIterable<Uint8Array>) | AsyncIterable<Uint8Array>;

export interface HttpRequest {
  /** Upper case: GET, HEAD, PUT, DELETE, POST. */
  readonly method: string;
  /** An absolute http(s) URL, already encoded; it never holds credentials. */
  readonly url: string;
  /** Lower-case names. The Authorization header is added by the auth middleware, never here. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: HttpBody;
  readonly signal?: AbortSignal;
  /**
   * Overrides the method-based guess of whether sending this request twice is
   * harmless (a batch whose items each carry an Idempotency-Key is).
   */
  readonly idempotent?: boolean;
  /** Overrides the timeout middleware's budget for this request. */
  readonly timeoutMs?: number;
}

/**
 * An answer. Its body must be consumed or discarded exactly once (`text()`,
 * `json()` or `dump()`): a transport with a keep-alive pool can reuse the
 * connection only then.
 */
export interface HttpResponse {
  readonly status: number;
  /** Lower-case names; repeated headers joined with ", ". */
  readonly headers: Readonly<Record<string, string>>;
  text(): Promise<string>;
  /** Rejects with a ProtocolError when the body is not JSON. */
  json(): Promise<unknown>;
  /** Discards the body; never rejects. */
  dump(): Promise<void>;
}

export type HttpTransport = (request: HttpRequest) => Promise<HttpResponse>;

export type HttpMiddleware = (next: HttpTransport) => HttpTransport;

const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set([
  'GET',
  'HEAD',
  'OPTIONS',
  'PUT',
  'DELETE',
]);

/** Whether the body of this request can be produced again for another attempt. */
export function canResendBody(body: HttpBody | undefined): boolean {
  return body === undefined || body instanceof Uint8Array || typeof body === 'function';
}

/**
 * Whether sending the request again is harmless: a naturally idempotent method
 * or an Idempotency-Key (or the caller says so), and a body that can be reopened.
 */
export function isSafeToResend(request: HttpRequest): boolean {
  if (!canResendBody(request.body)) return false;
  if (request.idempotent !== undefined) return request.idempotent;
  return (
    IDEMPOTENT_METHODS.has(request.method.toUpperCase()) ||
    request.headers['idempotency-key'] !== undefined
  );
}

/** Opens a body for one attempt: bytes as they are, an opener called afresh. */
export function openBody(body: HttpBody): Uint8Array | AsyncIterable<Uint8Array> {
  return typeof body === 'function' ? body() : body;
}

/** The body's size when known without reading it: the bytes, or a Content-Length. */
export function bodySizeOf(request: HttpRequest): number | undefined {
  if (request.body instanceof Uint8Array) return request.body.byteLength;
  const declared = request.headers['content-length'];
  if (declared !== undefined && /^\d+$/.test(declared)) return Number(declared);
  return undefined;
}

/**
 * The URL as it may appear in messages and logs: no credentials, no query, no
 * fragment (a query can carry a signed token).
 */
export function describeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}

/** The per-host key the limiters and the breaker use. */
export function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '';
  }
}

/** Applies middleware so that the first one listed is the outermost. */
export function applyMiddleware(
  base: HttpTransport,
  middleware: readonly HttpMiddleware[],
): HttpTransport {
  return middleware.reduceRight<HttpTransport>((next, wrap) => wrap(next), base);
}

/** Wraps a response so `onSettled` runs once its body is consumed or discarded. */
export function onBodySettled(response: HttpResponse, onSettled: () => void): HttpResponse {
  let done = false;
  const settle = (): void => {
    if (done) return;
    done = true;
    onSettled();
  };
  return {
    status: response.status,
    headers: response.headers,
    text: () => response.text().finally(settle),
    json: () => response.json().finally(settle),
    dump: () => response.dump().finally(settle),
  };
}

/** Parses a response body as JSON, or throws a ProtocolError that says so. */
export function parseJsonBody(text: string, what: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new ProtocolError(
      `${what}: the response body is not valid JSON (${text.length} characters)`,
      { cause: safeCause(error) },
    );
  }
}
