import { AdaptiveRate } from '../../limits/adaptive-rate.ts';
import { TokenBucket } from '../../limits/token-bucket.ts';
import type { Stats } from '../../stats/stats.ts';
import { systemClock, type Clock } from '../../time/clock.ts';
import { assertInteger, assertPositive } from '../../validate.ts';
import { hostOf, type HttpMiddleware } from './http-transport.ts';
import type { TransportMonitor } from './transport-monitor.ts';

export interface RateLimitMiddlewareOptions {
  /**
   * The user's rate per host (`--rate`): requests start paced at it and never
   * go faster. Without it, a host is not paced until it throttles.
   */
  ratePerSec?: number;
  /** Requests let through at once at the user's rate. Default max(1, ceil(ratePerSec)). */
  burst?: number;
  /** Off: a fixed pace of `ratePerSec` (none without it). Default true. */
  adaptive?: boolean;
  clock?: Clock;
  /** Counts the time requests waited for a token. */
  stats?: Stats;
  /** Shown each host's pace, tokens and queue. */
  monitor?: TransportMonitor;
}

// The answers that ask us to slow down. A 504 or a timeout says a request took
// too long, which the concurrency bound is for; cutting the rate for them would
// slow a big upload's neighbours for no gain.
const THROTTLE_STATUSES: ReadonlySet<number> = new Set([429, 503]);

/**
 * Once throttled, the bucket admits this much time's worth of tokens at once.
 * A timer wakes at best every millisecond or so, so a burst of 1 would cap the
 * pace near 1000/s; 20 ms of tokens keeps high rates reachable while a
 * throttled remote (whose own burst we do not know) sees no real burst (one
 * request up to 50/s, four at 200/s).
 */
const ADAPTIVE_BURST_MS = 20;

interface HostPace {
  readonly controller: AdaptiveRate | undefined;
  bucket: TokenBucket | undefined;
}

/**
 * Paces requests per host with a token bucket whose rate comes from an
 * {@link AdaptiveRate}: unpaced (or at `--rate`) until the remote answers 429
 * or 503, then cut and grown back on a CUBIC curve from what the remote
 * accepted, for the life of the transport. Waiters are served in order; a
 * request is paced before it takes a concurrency slot.
 */
export function rateLimitMiddleware(options: RateLimitMiddlewareOptions = {}): HttpMiddleware {
  const { ratePerSec, stats, monitor } = options;
  if (ratePerSec !== undefined) assertPositive('ratePerSec', ratePerSec);
  const userBurst =
    options.burst ?? (ratePerSec === undefined ? undefined : Math.max(1, Math.ceil(ratePerSec)));
  if (userBurst !== undefined) assertInteger('burst', userBurst, 1);
  const adaptive = options.adaptive !== false;
  const clock = options.clock ?? systemClock;
  if (!adaptive && ratePerSec === undefined) return (next) => next;
  const hosts = new Map<string, HostPace>();

  const burstFor = (pace: HostPace, rate: number): number => {
    if (!pace.controller?.throttled) return userBurst ?? 1;
    const burst = Math.max(1, Math.ceil((rate * ADAPTIVE_BURST_MS) / 1000));
    return Math.min(burst, userBurst ?? burst);
  };

  /** Brings the host's bucket to the controller's rate; `drain` empties it after a cut. */
  const apply = (pace: HostPace, drain: boolean): void => {
    const rate = pace.controller ? pace.controller.ratePerSec : ratePerSec;
    if (rate === undefined) return;
    const burst = burstFor(pace, rate);
    const bucket = pace.bucket ?? new TokenBucket({ ratePerSec: rate, burst, clock });
    pace.bucket = bucket;
    if (drain) {
      // A cut must not let a saved-up burst into a remote that just said stop.
      // With waiters queued the bucket already holds less than one token.
      bucket.setRate(rate, 1);
      while (bucket.waiting === 0 && bucket.tryTake(1));
    }
    // Re-arming the head's timer for every tiny step of the curve is wasted work.
    const drift = Math.abs(bucket.ratePerSec - rate) / rate;
    if (drain || drift > 0.005 || bucket.burst !== burst) bucket.setRate(rate, burst);
  };

  const paceFor = (host: string): HostPace => {
    const pace = hosts.get(host);
    if (pace) return pace;
    const controller = adaptive
      ? new AdaptiveRate({
          clock,
          ...(ratePerSec === undefined ? {} : { ceilingPerSec: ratePerSec }),
        })
      : undefined;
    const created: HostPace = { controller, bucket: undefined };
    apply(created, false);
    hosts.set(host, created);
    monitor?.register(host, () => {
      const bucket = created.bucket;
      const rate = controller ? controller.ratePerSec : ratePerSec;
      return {
        ratePerSec: rate ?? null,
        ceilingPerSec: ratePerSec ?? null,
        adaptive: controller?.throttled ?? false,
        tokens: rate === undefined || !bucket ? null : bucket.available,
        queued: bucket?.waiting ?? 0,
      };
    });
    return created;
  };

  return (next) => async (request) => {
    const pace = paceFor(hostOf(request.url));
    const { controller } = pace;
    const bucket = pace.bucket;
    if (bucket) {
      const startMs = clock.now();
      try {
        await bucket.take(request.signal);
      } finally {
        stats?.addLimiterWaitMs(Math.max(0, clock.now() - startMs));
      }
    }
    if (!controller) return next(request);
    const ticket = controller.recordSend();
    if (pace.bucket) apply(pace, false);
    const response = await next(request);
    if (!THROTTLE_STATUSES.has(response.status)) controller.recordAccepted();
    else if (controller.recordThrottle(ticket)) apply(pace, true);
    return response;
  };
}
