// The real clock can only be checked in real time, so its test lives here, not
// in core (whose tests never wait in real time).
import { describe, expect, it } from 'vitest';
import { systemClock } from '@upsync/core';

describe('systemClock', () => {
  it('a timer fires no earlier than its due time as now() reads it', async () => {
    // Date.now() may lag the monotonic timer clock; the promise is about now().
    for (let i = 0; i < 20; i++) {
      const start = systemClock.now();
      await systemClock.sleep(2);
      expect(systemClock.now()).toBeGreaterThanOrEqual(start + 2);
    }
  });

  it('clearTimeout cancels a timer', async () => {
    let fired = false;
    const handle = systemClock.setTimeout(() => (fired = true), 1);
    systemClock.clearTimeout(handle);
    await new Promise((resolve) => globalThis.setTimeout(resolve, 10));
    expect(fired).toBe(false);
  });
});
