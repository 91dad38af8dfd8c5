import { RetryBudgetError } from '../errors/upsync-error.ts';
import { systemClock, type Clock } from '../time/clock.ts';
import { assertNonNegative } from '../validate.ts';
import { exponentialBackoff, type Backoff } from './backoff.ts';
import {
  classifyError,
  type ClassifyContext,
  type ClassifyErrorOptions,
  type RetryDecision,
} from './classify.ts';
import { DEFAULT_MAX_RETRY_AFTER_MS } from './retry-after.ts';
import { RetryBudget, type RetryBudgetLimit } from './retry-budget.ts';

/** What each call of the operation is told. */
export interface RetryAttempt {
  /** 1 for the first call, counting every call in this `retry()`. */
  attempt: number;
  signal: AbortSignal | undefined;
}

/** A failure that will be retried, reported before the wait. */
export interface RetryEvent {
  /** The call that failed (as in {@link RetryAttempt}). */
  attempt: number;
  /** How long `retry()` waits before the next call. */
  delayMs: number;
  error: unknown;
  decision: Extract<RetryDecision, { action: 'retry' }>;
}

export interface RetryOptions {
  /** Default systemClock. */
  clock?: Clock;
  /** Default exponentialBackoff() (full jitter, 1 s base, 30 s cap). */
  backoff?: Backoff;
  /**
   * Default a fresh RetryBudget (5 attempts, 2 min) on `clock`. Pass one
   * restored from the outbox to carry on an item's budget; it is updated in place.
   */
  budget?: RetryBudget;
  /** The longest single wait, whatever the backoff or Retry-After asks. Default 300_000. */
  maxDelayMs?: number;
  /** Aborting rejects with `signal.reason` at once, also in the middle of a wait. */
  signal?: AbortSignal;
  /** Passed to the classifier: the method and the target a 404 is about. */
  context?: ClassifyContext;
  /** Default classifyError. */
  classify?: (error: unknown, options: ClassifyErrorOptions) => RetryDecision;
  /** Called before each wait, so stats can count retries and backoff time. */
  onRetry?: (event: RetryEvent) => void;
}

/**
 * Runs `fn` until it succeeds, retrying the failures the classifier calls
 * transient. Each wait is max(backoff, Retry-After), capped at `maxDelayMs`.
 * Any other failure is rethrown at once, as it is; when the budget cannot fit
 * another attempt, rejects with a RetryBudgetError whose `cause` is the last
 * failure.
 */
export async function retry<T>(
  fn: (attempt: RetryAttempt) => Promise<T>,
  options: RetryOptions = {},
): Promise<T> {
  if (typeof fn !== 'function') throw new TypeError(`fn must be a function, got ${String(fn)}`);
  const clock = options.clock ?? systemClock;
  const backoff = options.backoff ?? exponentialBackoff();
  const budget = options.budget ?? new RetryBudget({ clock });
  const maxDelayMs = options.maxDelayMs ?? DEFAULT_MAX_RETRY_AFTER_MS;
  assertNonNegative('maxDelayMs', maxDelayMs);
  const classify = options.classify ?? classifyError;
  const { signal, onRetry } = options;

  signal?.throwIfAborted();
  const limitAtStart = budget.limitHit(0);
  if (limitAtStart !== undefined) {
    throw new RetryBudgetError(
      `retry budget already spent (${describeLimit(budget, limitAtStart)})`,
      budget.attempts,
    );
  }
  budget.start();

  let calls = 0;
  // Calls refused before reaching the remote use no attempt, but must still
  // lengthen the backoff, or a breaker that keeps refusing would be polled in
  // a tight loop.
  let freeCalls = 0;
  let previousBackoffMs: number | undefined;
  for (;;) {
    signal?.throwIfAborted();
    calls++;
    try {
      return await fn({ attempt: calls, signal });
    } catch (error) {
      signal?.throwIfAborted();
      const classifyOptions: ClassifyErrorOptions = { ...options.context, nowMs: clock.now() };
      if (signal) classifyOptions.signal = signal;
      const decision = classify(error, classifyOptions);
      if (decision.action !== 'retry') throw error;

      if (decision.usesAttempt) budget.recordAttempt();
      else freeCalls++;
      const backoffMs = backoff(Math.max(1, budget.attempts + freeCalls), previousBackoffMs);
      previousBackoffMs = backoffMs;
      const delayMs = Math.min(maxDelayMs, Math.max(backoffMs, decision.retryAfterMs ?? 0));

      const limit = budget.limitHit(delayMs);
      if (limit !== undefined) {
        throw new RetryBudgetError(
          `gave up after ${budget.attempts} attempts (${describeLimit(budget, limit)})`,
          budget.attempts,
          { cause: error },
        );
      }
      onRetry?.({ attempt: calls, delayMs, error, decision });
      await clock.sleep(delayMs, signal);
    }
  }
}

function describeLimit(budget: RetryBudget, limit: RetryBudgetLimit): string {
  return limit === 'attempts'
    ? `at most ${budget.maxAttempts} attempts`
    : `the next attempt would start after the ${budget.maxTimeMs} ms retry time`;
}
