import { RetryBudgetError } from '../../errors/upsync-error.ts';
import { exponentialBackoff, type Backoff } from '../../retry/backoff.ts';
import {
  classifyError,
  classifyStatus,
  type ClassifyErrorOptions,
  type RetryDecision,
} from '../../retry/classify.ts';
import { DEFAULT_MAX_RETRY_AFTER_MS, parseRetryAfter } from '../../retry/retry-after.ts';
import { RetryBudget } from '../../retry/retry-budget.ts';
import { retry, type RetryEvent } from '../../retry/retry.ts';
import type { Stats } from '../../stats/stats.ts';
import { systemClock, type Clock } from '../../time/clock.ts';
import { assertNonNegative } from '../../validate.ts';
import { isSafeToResend, type HttpMiddleware, type HttpResponse } from './http-transport.ts';

export interface RetryMiddlewareOptions {
  clock?: Clock;
  /** Default exponentialBackoff(): full jitter, 1 s base, 30 s cap per wait. */
  backoff?: Backoff;
  /** Attempts per request, the first included. Default 5. */
  maxAttempts?: number;
  /** How long after the first attempt the last may start. Default 120_000. */
  maxTimeMs?: number;
  /** The cap on a server's Retry-After (and on any single wait). Default 300_000. */
  maxRetryAfterMs?: number;
  /** Counts retries and the time slept between attempts. */
  stats?: Stats;
  /** Told before each wait (for logs and events). */
  onRetry?: (event: RetryEvent & { method: string; url: string }) => void;
}

/** A retryable answer, thrown inside retry() so it goes through the one classifier. */
class RetryableResponse extends Error {
  readonly response: HttpResponse;
  readonly retryAfterMs: number | undefined;
  constructor(response: HttpResponse, retryAfterMs: number | undefined) {
    super(`retryable status ${response.status}`);
    this.response = response;
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * Retries what core's classifier calls transient (408, 429, 5xx from the
 * protocol's list, network failures, timeouts, refusals by an open breaker,
 * which use no attempt), waiting max(backoff, Retry-After). Only requests that
 * are safe to send twice are retried (see isSafeToResend); others pass through.
 *
 * When the budget runs out the caller gets the last outcome as it was: the last
 * response (body unread, so its error code can be reported) or the last error.
 */
export function retryMiddleware(options: RetryMiddlewareOptions = {}): HttpMiddleware {
  const clock = options.clock ?? systemClock;
  const backoff = options.backoff ?? exponentialBackoff();
  const maxRetryAfterMs = options.maxRetryAfterMs ?? DEFAULT_MAX_RETRY_AFTER_MS;
  assertNonNegative('maxRetryAfterMs', maxRetryAfterMs);
  // Validates maxAttempts and maxTimeMs now rather than on the first request.
  new RetryBudget({
    clock,
    ...(options.maxAttempts === undefined ? {} : { maxAttempts: options.maxAttempts }),
    ...(options.maxTimeMs === undefined ? {} : { maxTimeMs: options.maxTimeMs }),
  });
  const { stats } = options;
  // Counts what was actually slept, also when an abort cuts a wait short.
  const sleepClock: Clock = {
    now: () => clock.now(),
    setTimeout: (callback, delayMs) => clock.setTimeout(callback, delayMs),
    clearTimeout: (handle) => clock.clearTimeout(handle),
    async sleep(delayMs, signal) {
      const startMs = clock.now();
      try {
        await clock.sleep(delayMs, signal);
      } finally {
        stats?.addBackoffMs(Math.max(0, clock.now() - startMs));
      }
    },
  };

  return (next) => async (request) => {
    if (!isSafeToResend(request)) return next(request);
    const method = request.method.toUpperCase();
    const budget = new RetryBudget({
      clock,
      ...(options.maxAttempts === undefined ? {} : { maxAttempts: options.maxAttempts }),
      ...(options.maxTimeMs === undefined ? {} : { maxTimeMs: options.maxTimeMs }),
    });
    const classify = (error: unknown, context: ClassifyErrorOptions): RetryDecision =>
      error instanceof RetryableResponse
        ? classifyStatus(error.response.status, {
            method,
            ...(error.retryAfterMs === undefined ? {} : { retryAfterMs: error.retryAfterMs }),
          })
        : classifyError(error, context);
    try {
      return await retry(
        async () => {
          const response = await next(request);
          const retryAfterMs = parseRetryAfter(response.headers['retry-after'], {
            nowMs: clock.now(),
            maxMs: maxRetryAfterMs,
          });
          const decision = classifyStatus(response.status, {
            method,
            ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
          });
          if (decision.action === 'retry') throw new RetryableResponse(response, retryAfterMs);
          return response;
        },
        {
          clock: sleepClock,
          backoff,
          budget,
          maxDelayMs: maxRetryAfterMs,
          context: { method },
          classify,
          ...(request.signal ? { signal: request.signal } : {}),
          onRetry(event) {
            // Read only now: once retry() gives up, the last answer goes to the caller unread.
            if (event.error instanceof RetryableResponse) void event.error.response.dump();
            stats?.recordRetry();
            options.onRetry?.({ ...event, method, url: request.url });
          },
        },
      );
    } catch (error) {
      const last =
        error instanceof RetryBudgetError && error.cause !== undefined ? error.cause : error;
      if (last instanceof RetryableResponse) return last.response;
      throw last;
    }
  };
}
