import {
  CircuitOpenError,
  HttpError,
  NetworkError,
  TimeoutError,
  isUpsyncError,
} from '../errors/upsync-error.ts';
import { assertInteger } from '../validate.ts';

/** Why a failure may succeed if tried again. */
export type RetryReason = 'status' | 'network' | 'timeout' | 'circuit-open' | 'retryable-error';

/**
 * What to do after a request or an attempt, for the HTTP middleware and the
 * engine to switch on `action`:
 * - `done`: it succeeded, or ended as well as success (a DELETE answered 404).
 * - `retry`: try again later. `retryAfterMs` is the server's (or the breaker's)
 *   wait, already capped; `pauseHost` says the whole host should wait that long
 *   (a 503 with Retry-After), not just this request; `overload` marks the
 *   signals adaptive concurrency backs off on (429, 503, 504, timeouts);
 *   `usesAttempt` is false for a call that never reached the remote.
 * - `pause`: sending to this remote or project cannot work until the user acts
 *   (401/403 auth, 404 on the project). Keep every item pending; never dead-letter.
 * - `dead-letter`: the remote refused this item itself (400, 409, 412, 413, 422).
 * - `fail`: not retryable and not about the item: another status, or an error
 *   that is not a known transient failure (a bug must not be retried in a loop).
 * - `abort`: the caller's signal aborted; the item stays pending.
 */
export type RetryDecision =
  | { readonly action: 'done'; readonly status: number }
  | {
      readonly action: 'retry';
      readonly reason: RetryReason;
      readonly status: number | undefined;
      readonly retryAfterMs: number | undefined;
      readonly pauseHost: boolean;
      readonly overload: boolean;
      readonly usesAttempt: boolean;
    }
  | { readonly action: 'pause'; readonly reason: 'auth' | 'project'; readonly status: number }
  | { readonly action: 'dead-letter'; readonly status: number }
  | { readonly action: 'fail'; readonly status: number | undefined }
  | { readonly action: 'abort' };

export type RetryAction = RetryDecision['action'];

/** What the caller knows about the request, which some statuses depend on. */
export interface ClassifyContext {
  /** The HTTP method, any case. A DELETE answered 404 is done. */
  method?: string;
  /**
   * What a 404 is about. 'project' (a listing, or a caller that knows the
   * project is missing) pauses; 'item' (default) is done for DELETE and a plain
   * failure otherwise. The protocol's 404 does not say which, so the caller does.
   */
  target?: 'item' | 'project';
}

export interface ClassifyStatusOptions extends ClassifyContext {
  /** The parsed, capped Retry-After of the response, if it had one. */
  retryAfterMs?: number;
}

export interface ClassifyErrorOptions extends ClassifyContext {
  /** The caller's signal: once it aborted, every failure is an abort. */
  signal?: AbortSignal;
  /** `clock.now()`, to turn a breaker's retry time into a wait. */
  nowMs?: number;
}

const DEAD_LETTER_STATUSES: ReadonlySet<number> = new Set([400, 409, 412, 413, 422]);
const RETRY_STATUSES: ReadonlySet<number> = new Set([408, 429, 500, 502, 503, 504]);
const OVERLOAD_STATUSES: ReadonlySet<number> = new Set([429, 503, 504]);

function retryDecision(
  reason: RetryReason,
  fields: { status?: number; retryAfterMs?: number | undefined; usesAttempt?: boolean } = {},
): RetryDecision {
  const status = fields.status;
  const retryAfterMs = fields.retryAfterMs;
  return {
    action: 'retry',
    reason,
    status,
    retryAfterMs,
    // Only a 503 speaks for the whole host; a 429 is about this request's pace,
    // which the adaptive limiter handles.
    pauseHost: status === 503 && retryAfterMs !== undefined,
    overload: reason === 'timeout' || (status !== undefined && OVERLOAD_STATUSES.has(status)),
    usesAttempt: fields.usesAttempt ?? true,
  };
}

/** Classifies an HTTP response status (per shared/PROTOCOL.md "Load and failure"). */
export function classifyStatus(status: number, options: ClassifyStatusOptions = {}): RetryDecision {
  assertInteger('status', status);
  const retryAfterMs = options.retryAfterMs;
  if (retryAfterMs !== undefined && !(retryAfterMs >= 0)) {
    throw new TypeError(`retryAfterMs must be a number >= 0, got ${retryAfterMs}`);
  }
  if (status >= 200 && status <= 299) return { action: 'done', status };
  if (RETRY_STATUSES.has(status)) {
    return retryDecision('status', { status, retryAfterMs });
  }
  if (status === 401 || status === 403) return { action: 'pause', reason: 'auth', status };
  if (status === 404) {
    if (options.target === 'project') return { action: 'pause', reason: 'project', status };
    if (options.method?.toUpperCase() === 'DELETE') return { action: 'done', status };
    return { action: 'fail', status };
  }
  if (DEAD_LETTER_STATUSES.has(status)) return { action: 'dead-letter', status };
  return { action: 'fail', status };
}

function errorName(error: unknown): unknown {
  return typeof error === 'object' && error !== null
    ? (error as { name?: unknown }).name
    : undefined;
}

/**
 * Classifies a thrown error. Only failures known to be transient are retried;
 * anything unknown is a `fail`, so a bug is reported instead of retried.
 */
export function classifyError(error: unknown, options: ClassifyErrorOptions = {}): RetryDecision {
  if (options.signal?.aborted) return { action: 'abort' };
  if (error instanceof HttpError) {
    const statusOptions: ClassifyStatusOptions = {};
    if (options.method !== undefined) statusOptions.method = options.method;
    if (options.target !== undefined) statusOptions.target = options.target;
    if (error.retryAfterMs !== undefined && error.retryAfterMs >= 0) {
      statusOptions.retryAfterMs = error.retryAfterMs;
    }
    return classifyStatus(error.status, statusOptions);
  }
  if (error instanceof CircuitOpenError) {
    const retryAfterMs =
      options.nowMs === undefined ? undefined : Math.max(0, error.retryAtMs - options.nowMs);
    return retryDecision('circuit-open', { retryAfterMs, usesAttempt: false });
  }
  if (error instanceof TimeoutError) return retryDecision('timeout');
  if (error instanceof NetworkError) return retryDecision('network');
  // Other upsync errors say themselves whether a retry can help (a ProtocolError
  // from a truncated body can; a ConfigError cannot).
  if (isUpsyncError(error)) return error.retryable ? retryDecision('retryable-error') : fail();
  // AbortSignal.timeout() rejects with a DOMException named TimeoutError.
  if (errorName(error) === 'TimeoutError') return retryDecision('timeout');
  // Aborted by a signal that is not the caller's (an inner one): still not a
  // failure to retry.
  if (errorName(error) === 'AbortError') return { action: 'abort' };
  return fail();
}

function fail(): RetryDecision {
  return { action: 'fail', status: undefined };
}
