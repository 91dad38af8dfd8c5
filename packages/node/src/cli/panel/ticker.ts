import type { Clock } from '@upsync/core';

/** Calls `fn` every `ms` until the returned function is called. */
export type Every = (ms: number, fn: () => void) => () => void;

/** Real timers, unref'd: a panel or progress line never keeps the process alive. */
export const unrefEvery: Every = (ms, fn) => {
  const timer = setInterval(fn, ms);
  timer.unref();
  return () => clearInterval(timer);
};

/** On a Clock (a ManualClock in tests). */
export function clockEvery(clock: Clock): Every {
  return (ms, fn) => {
    let stopped = false;
    let handle = clock.setTimeout(function tick() {
      if (stopped) return;
      handle = clock.setTimeout(tick, ms);
      fn();
    }, ms);
    return () => {
      stopped = true;
      clock.clearTimeout(handle);
    };
  };
}
