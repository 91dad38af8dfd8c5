import { describe, expect, it } from 'vitest';
import { ManualClock } from './manual-clock.ts';
import { sleepOn, systemClock } from './clock.ts';

describe('ManualClock', () => {
  it('fires due timers in time order, ties in the order they were set', async () => {
    const clock = new ManualClock({ startMs: 1000 });
    const fired: string[] = [];
    clock.setTimeout(() => fired.push(`c@${clock.now()}`), 30);
    clock.setTimeout(() => fired.push(`a@${clock.now()}`), 10);
    clock.setTimeout(() => fired.push(`b@${clock.now()}`), 10);
    clock.setTimeout(() => fired.push(`late@${clock.now()}`), 31);
    await clock.advance(30);
    expect(fired).toEqual(['a@1010', 'b@1010', 'c@1030']);
    expect(clock.now()).toBe(1030);
    expect(clock.pendingTimers).toBe(1);
  });

  it('lets promise callbacks run between timers, so awaited work sees the right time', async () => {
    const clock = new ManualClock();
    const seen: number[] = [];
    const task = (async () => {
      await clock.sleep(5);
      seen.push(clock.now());
      await Promise.resolve();
      await clock.sleep(5); // armed from a promise callback, due at 10
      seen.push(clock.now());
    })();
    await clock.advance(20);
    await task;
    expect(seen).toEqual([5, 10]);
  });

  it('cleared timers never fire', async () => {
    const clock = new ManualClock();
    let fired = false;
    const handle = clock.setTimeout(() => (fired = true), 5);
    clock.clearTimeout(handle);
    await clock.advance(10);
    expect(fired).toBe(false);
  });

  it('sleep rejects with the signal reason on abort, and clears its timer', async () => {
    const clock = new ManualClock();
    const controller = new AbortController();
    const sleeping = clock.sleep(1000, controller.signal);
    const reason = new Error('stop');
    controller.abort(reason);
    await expect(sleeping).rejects.toBe(reason);
    expect(clock.pendingTimers).toBe(0);
    await expect(clock.sleep(1, controller.signal)).rejects.toBe(reason);
  });

  it('runAll fires everything and stops a timer that keeps re-arming', async () => {
    const clock = new ManualClock();
    let count = 0;
    clock.setTimeout(() => count++, 100);
    clock.setTimeout(() => count++, 50);
    expect(await clock.runAll()).toBe(2);
    expect(count).toBe(2);
    const rearm = (): void => void clock.setTimeout(rearm, 1);
    rearm();
    await expect(clock.runAll(20)).rejects.toThrow(/re-arming/);
  });

  it('refuses to go backwards or by a non-finite amount', async () => {
    const clock = new ManualClock();
    await expect(clock.advance(-1)).rejects.toThrow(TypeError);
    await expect(clock.advance(Number.NaN)).rejects.toThrow(/NaN/);
    expect(() => new ManualClock({ startMs: Infinity })).toThrow(/Infinity/);
  });

  it('sleepOn works on the system clock with an already aborted signal', async () => {
    const controller = new AbortController();
    controller.abort(new Error('gone'));
    await expect(sleepOn(systemClock, 10_000, controller.signal)).rejects.toThrow('gone');
  });
});
