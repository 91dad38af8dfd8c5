/** An opaque handle returned by {@link Clock.setTimeout}. */
export type TimerHandle = number | object;

/**
 * Everything in upsync that waits takes a Clock, so tests can run on a
 * {@link ManualClock} and never sleep in real time.
 */
export interface Clock {
  /** Milliseconds since the epoch (or any fixed origin, for a manual clock). */
  now(): number;
  setTimeout(callback: () => void, delayMs: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
  /** Resolves after `delayMs`; rejects with `signal.reason` if the signal aborts first. */
  sleep(delayMs: number, signal?: AbortSignal): Promise<void>;
}

/** Shared by every clock: a sleep built from setTimeout/clearTimeout. */
export function sleepOn(clock: Clock, delayMs: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clock.clearTimeout(handle);
      reject(signal?.reason as Error);
    };
    const handle = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, delayMs);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The real clock: `Date.now()` and the global timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, delayMs) => globalThis.setTimeout(callback, Math.max(0, delayMs)),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as Parameters<typeof clearTimeout>[0]),
  sleep(delayMs, signal) {
    return sleepOn(systemClock, delayMs, signal);
  },
};
