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

const MAX_LAG_MS = 20;

/**
 * The real clock: `Date.now()` and the global timers. Timers run on a monotonic
 * clock while `Date.now()` may read up to a millisecond behind it, so a timer
 * fires again for the rest until `now()` has reached its due time: code that
 * waits until a time T and then compares with `now()` must see T.
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(callback, delayMs) {
    const dueMs = Date.now() + Math.max(0, delayMs);
    const handle = { timer: undefined as ReturnType<typeof globalThis.setTimeout> | undefined };
    const fire = (): void => {
      const leftMs = dueMs - Date.now();
      // Only the lag of a few ms: a wall clock set back by an hour must not hold
      // the timer for an hour.
      if (leftMs > 0 && leftMs <= MAX_LAG_MS) handle.timer = globalThis.setTimeout(fire, leftMs);
      else callback();
    };
    handle.timer = globalThis.setTimeout(fire, Math.max(0, delayMs));
    return handle;
  },
  clearTimeout: (handle) =>
    globalThis.clearTimeout((handle as { timer?: Parameters<typeof clearTimeout>[0] }).timer),
  sleep(delayMs, signal) {
    return sleepOn(systemClock, delayMs, signal);
  },
};
