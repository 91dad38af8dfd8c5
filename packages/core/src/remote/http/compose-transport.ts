import type { Stats } from '../../stats/stats.ts';
import type { Clock } from '../../time/clock.ts';
import { authMiddleware, type AuthMiddlewareOptions } from './auth-middleware.ts';
import {
  circuitBreakerMiddleware,
  type CircuitBreakerMiddlewareOptions,
} from './circuit-breaker-middleware.ts';
import {
  concurrencyMiddleware,
  type ConcurrencyMiddlewareOptions,
} from './concurrency-middleware.ts';
import { applyMiddleware, type HttpMiddleware, type HttpTransport } from './http-transport.ts';
import { rateLimitMiddleware, type RateLimitMiddlewareOptions } from './rate-limit-middleware.ts';
import { retryMiddleware, type RetryMiddlewareOptions } from './retry-middleware.ts';
import { statsMiddleware } from './stats-middleware.ts';
import { timeoutMiddleware, type TimeoutMiddlewareOptions } from './timeout-middleware.ts';
import type { TransportMonitor } from './transport-monitor.ts';

type Own<T> = Omit<T, 'clock' | 'stats' | 'monitor'>;

export interface ComposeTransportOptions {
  /** Shared by every layer. Default the system clock. */
  clock?: Clock;
  /** Requests, retries, backoff and limiter waits are counted here. */
  stats?: Stats;
  /** Bearer auth; omit for a remote without it. */
  auth?: AuthMiddlewareOptions;
  /** `false` turns retries off. */
  retry?: Own<RetryMiddlewareOptions> | false;
  /** `false` turns the breaker and the host pause off. */
  breaker?: Own<CircuitBreakerMiddlewareOptions> | false;
  /**
   * Per-host pacing: adaptive by default (unpaced until a host throttles),
   * `ratePerSec` being the user's ceiling; `false` turns it off.
   */
  rateLimit?: Own<RateLimitMiddlewareOptions> | false;
  /** Default a ceiling of 16 per host, adaptive below it. */
  concurrency?: Own<ConcurrencyMiddlewareOptions>;
  timeout?: Own<TimeoutMiddlewareOptions>;
  /** Each host's pace, concurrency and breaker, for a live panel. */
  monitor?: TransportMonitor;
  /** Extra layers, placed just outside the base transport (e.g. a test's fault injection). */
  inner?: readonly HttpMiddleware[];
}

/**
 * The standard stack around a base transport, outermost first:
 *
 * 1. retry: each attempt goes through every gate below again, and the backoff
 *    sleeps hold no slot and no token.
 * 2. auth: each attempt carries the current token (a retry after a refresh
 *    uses the new one), getToken() runs without holding a slot, and what is
 *    thrown from below is cleaned of the token before anything above sees it.
 * 3. circuit breaker: a host that is down or paused by a 503 is refused before
 *    queueing for a token or a slot; the refusal uses no retry attempt.
 * 4. rate limit: a token is taken before a slot, so waiting on the pace does
 *    not hold a slot that measures requests in flight. Its rate adapts to the
 *    host's 429s and 503s; concurrency's AIMD halves on them too, but a cut
 *    slot count rarely binds: at 50/s and 10 ms a request, one slot suffices.
 * 5. concurrency: the adaptive bound on requests in flight.
 * 6. stats: counts what actually went out, timeouts as `network`.
 * 7. timeout: innermost, so time spent waiting on the limiters is not charged
 *    to the request's deadline.
 */
export function composeTransport(
  base: HttpTransport,
  options: ComposeTransportOptions = {},
): HttpTransport {
  if (typeof base !== 'function') {
    throw new TypeError(`base must be an HttpTransport function, got ${typeof base}`);
  }
  const { clock, stats, monitor } = options;
  const shared = { ...(clock ? { clock } : {}) };
  const counted = { ...shared, ...(stats ? { stats } : {}) };
  const watched = monitor ? { monitor } : {};
  const layers: HttpMiddleware[] = [];
  if (options.retry !== false) layers.push(retryMiddleware({ ...options.retry, ...counted }));
  if (options.auth) layers.push(authMiddleware(options.auth));
  if (options.breaker !== false) {
    layers.push(circuitBreakerMiddleware({ ...options.breaker, ...shared, ...watched }));
  }
  if (options.rateLimit !== false) {
    layers.push(rateLimitMiddleware({ ...options.rateLimit, ...counted, ...watched }));
  }
  layers.push(concurrencyMiddleware({ ...options.concurrency, ...counted, ...watched }));
  if (stats) layers.push(statsMiddleware({ stats }));
  layers.push(timeoutMiddleware({ ...options.timeout, ...shared }));
  layers.push(...(options.inner ?? []));
  return applyMiddleware(base, layers);
}
