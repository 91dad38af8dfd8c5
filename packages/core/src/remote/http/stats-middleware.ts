import type { Stats } from '../../stats/stats.ts';
import type { HttpMiddleware } from './http-transport.ts';

export interface StatsMiddlewareOptions {
  stats: Stats;
}

/**
 * Counts every request that went out, by method and status class; one that got
 * no answer (reset, refused, timed out) counts as `network`. A request the
 * caller aborted counts nowhere: it says nothing about the remote.
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
      return response;
    } catch (error) {
      if (!request.signal?.aborted) stats.recordRequest(method, 'network');
      throw error;
    }
  };
}
