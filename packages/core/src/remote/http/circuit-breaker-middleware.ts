import { CircuitBreaker, type CircuitBreakerEvents } from '../../breaker/circuit-breaker.ts';
import { CircuitOpenError } from '../../errors/upsync-error.ts';
import { classifyError } from '../../retry/classify.ts';
import { DEFAULT_MAX_RETRY_AFTER_MS, parseRetryAfter } from '../../retry/retry-after.ts';
import { systemClock, type Clock } from '../../time/clock.ts';
import { assertNonNegative } from '../../validate.ts';
import { hostOf, type HttpMiddleware } from './http-transport.ts';
import type { HostPacingPart, TransportMonitor } from './transport-monitor.ts';

export interface CircuitBreakerMiddlewareOptions {
  /** Consecutive failures that open a host's breaker. Default 5. */
  failureThreshold?: number;
  /** The first open period. Default 5000. */
  openMs?: number;
  /** The longest open period. Default 300_000. */
  maxOpenMs?: number;
  /** The cap on the host pause a 503's Retry-After asks for. Default 300_000. */
  maxRetryAfterMs?: number;
  clock?: Clock;
  /** Told of every breaker transition, with the host. */
  onStateChange?: (host: string, transition: CircuitBreakerEvents['state']) => void;
  /** Shown each host's breaker, a 503's pause counting as open until it ends. */
  monitor?: TransportMonitor;
}

// Statuses that say the host is struggling. Every other answer says it is up;
// a 429 too: the host answers and asks us to slow down, which is the rate
// limiter's job. Tripping the breaker on it would stop a sync that a gentler
// pace keeps going.
const FAILURE_STATUSES: ReadonlySet<number> = new Set([500, 502, 503, 504]);

/**
 * One circuit breaker per host, plus the host pause of a 503 with Retry-After
 * (shared/DESIGN.md "Failures"): until the pause ends, every request to that
 * host is refused at once. Refusals are CircuitOpenErrors, which the retry
 * middleware waits out without using an attempt.
 */
export function circuitBreakerMiddleware(
  options: CircuitBreakerMiddlewareOptions = {},
): HttpMiddleware {
  const clock = options.clock ?? systemClock;
  const maxRetryAfterMs = options.maxRetryAfterMs ?? DEFAULT_MAX_RETRY_AFTER_MS;
  assertNonNegative('maxRetryAfterMs', maxRetryAfterMs);
  const breakerOptions = {
    clock,
    ...(options.failureThreshold === undefined
      ? {}
      : { failureThreshold: options.failureThreshold }),
    ...(options.openMs === undefined ? {} : { openMs: options.openMs }),
    ...(options.maxOpenMs === undefined ? {} : { maxOpenMs: options.maxOpenMs }),
  };
  // Validates the options now rather than on the first request.
  new CircuitBreaker(breakerOptions);
  const breakers = new Map<string, CircuitBreaker>();
  const pausedUntilMs = new Map<string, number>();

  const breakerFor = (host: string): CircuitBreaker => {
    let breaker = breakers.get(host);
    if (!breaker) {
      breaker = new CircuitBreaker({ ...breakerOptions, name: host || 'remote' });
      if (options.onStateChange) {
        const listener = options.onStateChange;
        breaker.on('state', (transition) => listener(host, transition));
      }
      breakers.set(host, breaker);
      const registered = breaker;
      options.monitor?.register(host, () => describe(host, registered));
    }
    return breaker;
  };

  const describe = (host: string, breaker: CircuitBreaker): HostPacingPart => {
    const { state, retryAtMs } = breaker.snapshot();
    const pausedUntil = pausedUntilMs.get(host);
    if (pausedUntil !== undefined && pausedUntil > clock.now()) {
      // The pause refuses every request as an open breaker does, so the panel says so.
      return { breaker: 'open', breakerRetryAtMs: Math.max(pausedUntil, retryAtMs ?? 0) };
    }
    return { breaker: state, breakerRetryAtMs: state === 'open' ? retryAtMs : null };
  };

  return (next) => async (request) => {
    request.signal?.throwIfAborted();
    const host = hostOf(request.url);
    const untilMs = pausedUntilMs.get(host);
    if (untilMs !== undefined) {
      const waitMs = untilMs - clock.now();
      if (waitMs > 0) {
        throw new CircuitOpenError(
          `${host || 'remote'} asked for a pause (503 with Retry-After); ${Math.ceil(waitMs)} ms left`,
          untilMs,
        );
      }
      pausedUntilMs.delete(host);
    }
    const permit = breakerFor(host).acquire();
    try {
      const response = await next(request);
      if (FAILURE_STATUSES.has(response.status)) permit.failure();
      else permit.success();
      if (response.status === 503) {
        const pauseMs = parseRetryAfter(response.headers['retry-after'], {
          nowMs: clock.now(),
          maxMs: maxRetryAfterMs,
        });
        if (pauseMs !== undefined && pauseMs > 0) {
          const until = clock.now() + pauseMs;
          pausedUntilMs.set(host, Math.max(until, pausedUntilMs.get(host) ?? 0));
        }
      }
      return response;
    } catch (error) {
      if (request.signal?.aborted) permit.cancel();
      else if (classifyError(error).action === 'retry') permit.failure();
      // Anything else is a local fault (a bug, a bad argument): it says nothing about the host.
      else permit.cancel();
      throw error;
    }
  };
}
