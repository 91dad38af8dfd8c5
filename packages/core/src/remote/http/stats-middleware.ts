import type { Stats } from '../../stats/stats.ts';
import { bodySizeOf, type HttpMiddleware } from './http-transport.ts';

export interface StatsMiddlewareOptions {
  stats: Stats;
}

/**
 * Counts every request that went out, by method and status class; one that got
 * no answer (reset, refused, timed out) counts as `network`. A request the
 * caller aborted counts nowhere: it says nothing about the remote. The bytes of
 * a body count once the remote answered (so they were read), retries included.
 */
export function statsMiddleware(options: StatsMiddlewareOptions): HttpMiddleware {
  const { stats } = options;
  if (typeof stats?.recordRequest !== 'function') {
    throw new TypeError(`stats must be a Stats, got ${typeof stats}`);
  }
  return (next) => async (request) => {
    const method = request.method.toUpperCase();
    try {
      const response = await next(request);
      stats.recordRequest(method, response.status);
      const bytes = bodySizeOf(request);
      if (bytes !== undefined && request.body !== undefined) stats.addBytesSent(bytes);
      return response;
    } catch (error) {
      if (!request.signal?.aborted) stats.recordRequest(method, 'network');
      throw error;
    }
  };
}
