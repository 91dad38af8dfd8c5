import { RetryBudgetError } from '../errors/upsync-error.ts';
import { classifyError, type RetryDecision } from '../retry/classify.ts';
import { RetryBudget } from '../retry/retry-budget.ts';
import { retry } from '../retry/retry.ts';
import type { Remote } from '../remote/remote.ts';
import type { Clock } from '../time/clock.ts';
import { assertInteger, assertNonNegative } from '../validate.ts';
import type { ListedItem, Listing } from './decider.ts';

export interface LoadListingOptions {
  clock: Clock;
  /** Attempts in all; default 3. */
  attempts?: number;
  /** The wait between attempts; default 1000. */
  delayMs?: number;
  prefix?: string;
  signal?: AbortSignal;
  /** Told of each failed attempt that will be tried again. */
  onRetry?: (error: unknown, attempt: number) => void;
}

export type ListingResult =
  | { readonly listing: Listing; readonly error?: undefined }
  | { readonly listing: null; readonly error: unknown };

/**
 * Loads the remote's listing once for a command: `attempts` tries `delayMs`
 * apart (each through the remote's transport, retry middleware included).
 * When they are spent the command goes on without one (a HEAD per item), and
 * the result says why. An auth failure (401/403) or a missing project (404)
 * is thrown instead: falling back would only fail the same way per item.
 */
export async function loadListing(
  remote: Pick<Remote, 'list'>,
  options: LoadListingOptions,
): Promise<ListingResult> {
  const attempts = options.attempts ?? 3;
  const delayMs = options.delayMs ?? 1000;
  assertInteger('attempts', attempts, 1);
  assertNonNegative('delayMs', delayMs);
  const { clock, signal } = options;
  const classify = (error: unknown, nowMs: number | undefined): RetryDecision => {
    const decision = classifyError(error, {
      method: 'GET',
      target: 'project',
      ...(signal ? { signal } : {}),
      ...(nowMs === undefined ? {} : { nowMs }),
    });
    if (decision.action === 'pause' || decision.action === 'abort') return decision;
    // Anything else is worth the next attempt: the fallback comes after them anyway.
    return {
      action: 'retry',
      reason: 'retryable-error',
      status: undefined,
      retryAfterMs: undefined,
      pauseHost: false,
      overload: false,
      usesAttempt: true,
    };
  };
  try {
    const listing = await retry(
      async () => {
        const items = new Map<string, ListedItem>();
        const listOptions = {
          ...(signal ? { signal } : {}),
          ...(options.prefix === undefined ? {} : { prefix: options.prefix }),
        };
        for await (const item of remote.list(listOptions)) {
          items.set(item.key, {
            size: item.size,
            ...(item.digest === undefined ? {} : { digest: item.digest }),
            ...(item.etag === undefined ? {} : { etag: item.etag }),
            ...(item.modifiedMs === undefined ? {} : { modifiedMs: item.modifiedMs }),
          });
        }
        return items;
      },
      {
        clock,
        backoff: () => delayMs,
        budget: new RetryBudget({ clock, maxAttempts: attempts, maxTimeMs: Infinity }),
        classify: (error, classifyOptions) => classify(error, classifyOptions.nowMs),
        ...(signal ? { signal } : {}),
        ...(options.onRetry
          ? { onRetry: (event) => options.onRetry?.(event.error, event.attempt) }
          : {}),
      },
    );
    return { listing };
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    if (error instanceof RetryBudgetError) return { listing: null, error: error.cause ?? error };
    throw error;
  }
}
