import { TokenBucket } from '../../limits/token-bucket.ts';
import type { Stats } from '../../stats/stats.ts';
import { systemClock, type Clock } from '../../time/clock.ts';
import { assertInteger, assertPositive } from '../../validate.ts';
import { hostOf, type HttpMiddleware } from './http-transport.ts';

export interface RateLimitMiddlewareOptions {
  /** Requests per second per host, on average. */
  ratePerSec: number;
  /** Requests let through at once after a quiet spell. Default max(1, ceil(ratePerSec)). */
  burst?: number;
  clock?: Clock;
  /** Counts the time requests waited for a token. */
  stats?: Stats;
}

/**
 * Paces requests with one token bucket per host (`--rate`, `--burst`): an API
 * limited to 5 requests/s is sent at most that, instead of being hit and
 * answering 429s. Waiters are served in order.
 */
export function rateLimitMiddleware(options: RateLimitMiddlewareOptions): HttpMiddleware {
  const { ratePerSec, stats } = options;
  assertPositive('ratePerSec', ratePerSec);
  const burst = options.burst ?? Math.max(1, Math.ceil(ratePerSec));
  assertInteger('burst', burst, 1);
  const clock = options.clock ?? systemClock;
  const buckets = new Map<string, TokenBucket>();

  return (next) => async (request) => {
    const host = hostOf(request.url);
    let bucket = buckets.get(host);
    if (!bucket) {
      bucket = new TokenBucket({ ratePerSec, burst, clock });
      buckets.set(host, bucket);
    }
    const startMs = clock.now();
    try {
      await bucket.take(request.signal);
    } finally {
      stats?.addLimiterWaitMs(Math.max(0, clock.now() - startMs));
    }
    return next(request);
  };
}
