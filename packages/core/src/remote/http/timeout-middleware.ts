import { TimeoutError } from '../../errors/upsync-error.ts';
import { systemClock, type Clock } from '../../time/clock.ts';
import { assertNonNegative, assertPositive } from '../../validate.ts';
import { bodySizeOf, describeUrl, onBodySettled, type HttpMiddleware } from './http-transport.ts';

export const DEFAULT_TIMEOUT_MS = 30_000;
export const DEFAULT_TIMEOUT_MS_PER_MIB = 1_000;

const MIB = 1024 * 1024;

export interface TimeoutMiddlewareOptions {
  /** The budget of a request with no body or a small one. Default 30_000. */
  timeoutMs?: number;
  /**
   * Added per MiB of request body (known from the bytes or Content-Length),
   * so a 100 MiB upload over a slow link is not cut at 30 s while a stalled
   * small request still is. Default 1000, i.e. a floor of 1 MiB/s.
   */
  msPerMiB?: number;
  clock?: Clock;
}

/**
 * Gives each request a deadline, from sending until its response body is
 * consumed or discarded (a server that sends headers and then stalls is as
 * stuck as one that never answers). Past it the request is aborted and
 * rejects with a TimeoutError; an abort of the caller's own signal still
 * rejects with the caller's reason.
 */
export function timeoutMiddleware(options: TimeoutMiddlewareOptions = {}): HttpMiddleware {
  const baseMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const msPerMiB = options.msPerMiB ?? DEFAULT_TIMEOUT_MS_PER_MIB;
  assertPositive('timeoutMs', baseMs);
  assertNonNegative('msPerMiB', msPerMiB);
  const clock = options.clock ?? systemClock;

  return (next) => async (request) => {
    const timeoutMs = request.timeoutMs ?? baseMs + (msPerMiB * (bodySizeOf(request) ?? 0)) / MIB;
    const controller = new AbortController();
    const timer = clock.setTimeout(() => {
      controller.abort(
        new TimeoutError(
          `${request.method} ${describeUrl(request.url)} timed out after ${Math.round(timeoutMs)} ms`,
          timeoutMs,
        ),
      );
    }, timeoutMs);
    const stop = (): void => clock.clearTimeout(timer);
    const signal = request.signal
      ? AbortSignal.any([request.signal, controller.signal])
      : controller.signal;
    try {
      const response = await next({ ...request, signal });
      return onBodySettled(response, stop);
    } catch (error) {
      stop();
      // Transports reject with whatever their runtime says (a DOMException, an
      // undici error); the deadline is ours, so the error is ours too.
      if (controller.signal.aborted && !request.signal?.aborted) throw controller.signal.reason;
      throw error;
    }
  };
}
