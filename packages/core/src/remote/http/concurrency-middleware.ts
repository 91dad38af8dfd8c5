import { AdaptiveConcurrency } from '../../limits/adaptive-concurrency.ts';
import { Semaphore } from '../../limits/semaphore.ts';
import { classifyError, classifyStatus } from '../../retry/classify.ts';
import type { Stats } from '../../stats/stats.ts';
import { systemClock, type Clock } from '../../time/clock.ts';
import { assertInteger } from '../../validate.ts';
import { hostOf, onBodySettled, type HttpMiddleware } from './http-transport.ts';
import type { TransportMonitor } from './transport-monitor.ts';

export const DEFAULT_CONCURRENCY = 16;

export interface ConcurrencyMiddlewareOptions {
  /** The user's ceiling on requests in flight per host (`--concurrency`). Default 16. */
  max?: number;
  /** The floor the adaptive limit never goes below. Default 1. */
  min?: number;
  /** Off: a fixed limit of `max`. Default true. */
  adaptive?: boolean;
  /** Overloads within this long of a cut count as the same cut. Default 1000. */
  cooldownMs?: number;
  clock?: Clock;
  /** Counts the time requests waited for a slot. */
  stats?: Stats;
  /** Told when a host's limit moves (for the panel and logs). */
  onLimitChange?: (host: string, limit: number) => void;
  /** Shown each host's limit, requests in flight and waiters. */
  monitor?: TransportMonitor;
}

interface HostLimit {
  readonly semaphore: Semaphore;
  readonly adaptive: AdaptiveConcurrency | undefined;
}

/**
 * Bounds requests in flight per host. The bound starts at `max` and moves by
 * AIMD: a 429, 503, 504 or timeout halves it, a run of other answers grows it
 * back by one, never above `max`. A slot is held from sending until the
 * response body is consumed or discarded, because that is how long the server
 * is busy with it.
 */
export function concurrencyMiddleware(options: ConcurrencyMiddlewareOptions = {}): HttpMiddleware {
  const max = options.max ?? DEFAULT_CONCURRENCY;
  const min = options.min ?? 1;
  assertInteger('max', max, 1);
  assertInteger('min', min, 1);
  if (min > max) throw new TypeError(`min must be <= max (${max}), got ${min}`);
  const clock = options.clock ?? systemClock;
  const hosts = new Map<string, HostLimit>();

  const limitFor = (host: string): HostLimit => {
    let limit = hosts.get(host);
    if (limit) return limit;
    const semaphore = new Semaphore({ limit: max });
    let adaptive: AdaptiveConcurrency | undefined;
    if (options.adaptive !== false) {
      adaptive = new AdaptiveConcurrency({
        min,
        max,
        clock,
        ...(options.cooldownMs === undefined ? {} : { cooldownMs: options.cooldownMs }),
      });
      adaptive.on('change', (change) => {
        semaphore.setLimit(change.limit);
        options.onLimitChange?.(host, change.limit);
      });
    }
    limit = { semaphore, adaptive };
    hosts.set(host, limit);
    options.monitor?.register(host, () => ({
      concurrencyLimit: semaphore.limit,
      concurrencyMax: max,
      inFlight: semaphore.inUse,
      queued: semaphore.waiting,
    }));
    return limit;
  };

  return (next) => async (request) => {
    const { semaphore, adaptive } = limitFor(hostOf(request.url));
    const startMs = clock.now();
    let release: () => void;
    try {
      release = await semaphore.acquire(request.signal);
    } finally {
      options.stats?.addLimiterWaitMs(Math.max(0, clock.now() - startMs));
    }
    try {
      const response = await next(request);
      const decision = classifyStatus(response.status);
      if (decision.action === 'retry' && decision.overload) adaptive?.recordOverload();
      else if (decision.action !== 'retry') adaptive?.recordSuccess();
      return onBodySettled(response, release);
    } catch (error) {
      release();
      if (!request.signal?.aborted) {
        const decision = classifyError(error);
        if (decision.action === 'retry' && decision.overload) adaptive?.recordOverload();
      }
      throw error;
    }
  };
}
