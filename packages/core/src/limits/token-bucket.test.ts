import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { TokenBucket } from './token-bucket.ts';
import { ManualClock } from '../time/manual-clock.ts';
import { ClosedError } from '../errors/upsync-error.ts';
import type { Clock, TimerHandle } from '../time/clock.ts';

/** A view of a ManualClock that tracks the timers set through it (the bucket's, not the test's). */
function countingClock(clock: ManualClock) {
  const live = new Set<TimerHandle>();
  let maxLive = 0;
  const view: Clock = {
    now: () => clock.now(),
    setTimeout(callback, delayMs) {
      const handle = clock.setTimeout(() => {
        live.delete(handle);
        callback();
      }, delayMs);
      live.add(handle);
      maxLive = Math.max(maxLive, live.size);
      return handle;
    },
    clearTimeout(handle) {
      live.delete(handle);
      clock.clearTimeout(handle);
    },
    sleep: (delayMs, signal) => clock.sleep(delayMs, signal),
  };
  return { view, maxLive: () => maxLive };
}

/** Starts take() and records when it settles, without awaiting it. */
function track(promise: Promise<void>, clock: ManualClock) {
  const result: { atMs?: number; error?: unknown } = {};
  promise.then(
    () => (result.atMs = clock.now()),
    (error: unknown) => (result.error = error),
  );
  return result;
}

describe('TokenBucket', () => {
  it('rejects bad options with a TypeError that shows the value', () => {
    const clock = new ManualClock();
    expect(() => new TokenBucket({ ratePerSec: 0, burst: 1, clock })).toThrow(
      /ratePerSec must be a finite number > 0, got 0/,
    );
    expect(() => new TokenBucket({ ratePerSec: 1, burst: 1.5, clock })).toThrow(
      /burst must be an integer >= 1, got 1.5/,
    );
    expect(() => new TokenBucket({ ratePerSec: Number.NaN, burst: 1, clock })).toThrow(TypeError);
    const bucket = new TokenBucket({ ratePerSec: 1, burst: 2, clock });
    expect(() => bucket.setRate(-1)).toThrow(/got -1/);
    expect(() => bucket.tryTake(3)).toThrow(RangeError);
    expect(() => bucket.tryTake(0)).toThrow(TypeError);
  });

  it('starts full and refills at the rate, capped at burst', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket({ ratePerSec: 10, burst: 3, clock });
    expect(bucket.tryTake()).toBe(true);
    expect(bucket.tryTake(2)).toBe(true);
    expect(bucket.tryTake()).toBe(false);
    await clock.advance(99);
    expect(bucket.tryTake()).toBe(false);
    await clock.advance(1);
    expect(bucket.tryTake()).toBe(true);
    await clock.advance(10_000);
    expect(bucket.available).toBe(3);
  });

  it('take() resolves at once while tokens last, then one per refill interval', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket({ ratePerSec: 4, burst: 2, clock });
    const results = [0, 1, 2, 3].map(() => track(bucket.take(), clock));
    await clock.settle();
    expect(results.map((r) => r.atMs)).toEqual([0, 0, undefined, undefined]);
    expect(bucket.waiting).toBe(2);
    await clock.runAll();
    expect(results.map((r) => r.atMs)).toEqual([0, 0, 250, 500]);
    expect(bucket.waiting).toBe(0);
  });

  it('arms one timer, for the head waiter only', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket({ ratePerSec: 1, burst: 1, clock });
    bucket.tryTake();
    for (let i = 0; i < 5; i++) void bucket.take().catch(() => {});
    expect(clock.pendingTimers).toBe(1);
    await clock.advance(1000);
    expect(bucket.waiting).toBe(4);
    expect(clock.pendingTimers).toBe(1);
    bucket.close();
    expect(clock.pendingTimers).toBe(0);
  });

  it('a later caller never overtakes a waiter, even when a token is there', async () => {
    const clock = new ManualClock();
    // At 3/s a token takes 333.3 ms; the head's timer is armed for a whole 334 ms,
    // so between the two a token is there and a waiter is still queued.
    const bucket = new TokenBucket({ ratePerSec: 3, burst: 1, clock });
    bucket.tryTake();
    const head = track(bucket.take(), clock);
    await clock.advance(333.5);
    expect(bucket.available).toBeGreaterThanOrEqual(1);
    expect(bucket.tryTake()).toBe(false);
    const later = track(bucket.take(), clock);
    await clock.settle();
    expect(later.atMs).toBeUndefined();
    await clock.advance(0.5);
    expect(head.atMs).toBe(334);
    expect(later.atMs).toBeUndefined();
    await clock.runAll();
    expect(later.atMs).toBeGreaterThan(334);
  });

  it('tryTake returns false while anyone waits, even with tokens from a raised burst', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket({ ratePerSec: 1, burst: 1, clock });
    bucket.tryTake();
    const waiter = track(bucket.take(), clock);
    await clock.advance(500);
    expect(bucket.tryTake()).toBe(false);
    await clock.advance(500);
    expect(waiter.atMs).toBe(1000);
  });

  it('an aborted waiter rejects with the reason, leaves the queue, and the next moves up', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket({ ratePerSec: 1, burst: 1, clock });
    bucket.tryTake();
    const controller = new AbortController();
    const head = track(bucket.take(controller.signal), clock);
    const next = track(bucket.take(), clock);
    await clock.advance(400);
    const reason = new Error('stop');
    controller.abort(reason);
    await clock.settle();
    expect(head.error).toBe(reason);
    expect(bucket.waiting).toBe(1);
    await clock.advance(600);
    // The token accrued while the head waited goes to the next in line.
    expect(next.atMs).toBe(1000);
    expect(clock.pendingTimers).toBe(0);
  });

  it('aborting a waiter in the middle keeps the others in order', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket({ ratePerSec: 1, burst: 1, clock });
    bucket.tryTake();
    const controller = new AbortController();
    const a = track(bucket.take(), clock);
    const b = track(bucket.take(controller.signal), clock);
    const c = track(bucket.take(), clock);
    controller.abort(new Error('b gives up'));
    await clock.runAll();
    expect([a.atMs, b.atMs, c.atMs]).toEqual([1000, undefined, 2000]);
    expect(b.error).toEqual(new Error('b gives up'));
  });

  it('an already-aborted signal rejects at once and takes nothing', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket({ ratePerSec: 1, burst: 1, clock });
    const reason = new Error('already');
    await expect(bucket.take(AbortSignal.abort(reason))).rejects.toBe(reason);
    expect(bucket.available).toBe(1);
  });

  it('setRate credits elapsed time at the old rate, then waits at the new one', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket({ ratePerSec: 1, burst: 1, clock });
    bucket.tryTake();
    const waiter = track(bucket.take(), clock);
    await clock.advance(500); // 0.5 token at 1/s
    bucket.setRate(10); // the other 0.5 takes 50 ms at 10/s
    expect(clock.pendingTimers).toBe(1);
    await clock.advance(49);
    expect(waiter.atMs).toBeUndefined();
    await clock.advance(1);
    expect(waiter.atMs).toBe(550);
  });

  it('setRate slowing down re-arms the head timer later', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket({ ratePerSec: 10, burst: 1, clock });
    bucket.tryTake();
    const waiter = track(bucket.take(), clock);
    await clock.advance(50); // 0.5 token
    bucket.setRate(1); // the other 0.5 takes 500 ms
    await clock.advance(100);
    expect(waiter.atMs).toBeUndefined();
    await clock.advance(400);
    expect(waiter.atMs).toBe(550);
  });

  it('a smaller burst drops tokens above it; a larger one grants none at once', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket({ ratePerSec: 1, burst: 5, clock });
    bucket.setRate(1, 2);
    expect(bucket.available).toBe(2);
    bucket.setRate(1, 10);
    expect(bucket.available).toBe(2);
    await clock.advance(3000);
    expect(bucket.available).toBe(5);
    expect(bucket.burst).toBe(10);
  });

  it('does not credit time when the clock steps backwards', () => {
    let nowMs = 10_000;
    const steppingClock: Clock = {
      now: () => nowMs,
      setTimeout: () => 0,
      clearTimeout: () => {},
      sleep: () => Promise.resolve(),
    };
    const bucket = new TokenBucket({ ratePerSec: 1, burst: 1, clock: steppingClock });
    bucket.tryTake();
    nowMs = 5_000;
    expect(bucket.tryTake()).toBe(false);
    nowMs = 6_000;
    expect(bucket.tryTake()).toBe(true);
  });

  it('close() rejects waiters with ClosedError, and later calls too', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket({ ratePerSec: 1, burst: 1, clock });
    bucket.tryTake();
    const waiting = bucket.take();
    await bucket[Symbol.asyncDispose]();
    await expect(waiting).rejects.toBeInstanceOf(ClosedError);
    await expect(bucket.take()).rejects.toBeInstanceOf(ClosedError);
    expect(() => bucket.tryTake()).toThrow(ClosedError);
    expect(bucket.waiting).toBe(0);
    expect(clock.pendingTimers).toBe(0);
  });

  describe('property: never more than burst + rate * w in any window w, in FIFO order', () => {
    type Step =
      | { kind: 'take'; gapMs: number; abortAfterMs: number | null }
      | { kind: 'tryTake'; gapMs: number; n: number }
      | { kind: 'setRate'; gapMs: number; ratePerSec: number; burst: number };

    const rate = fc.double({ min: 0.1, max: 200, noNaN: true, noDefaultInfinity: true });
    const burst = fc.integer({ min: 1, max: 20 });
    const gapMs = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 2000 }));
    const step: fc.Arbitrary<Step> = fc.oneof(
      {
        weight: 6,
        arbitrary: fc.record({
          kind: fc.constant('take' as const),
          gapMs,
          abortAfterMs: fc.option(fc.integer({ min: 0, max: 3000 })),
        }),
      },
      {
        weight: 2,
        arbitrary: fc.record({
          kind: fc.constant('tryTake' as const),
          gapMs,
          n: fc.integer({ min: 1, max: 3 }),
        }),
      },
      {
        weight: 1,
        arbitrary: fc.record({
          kind: fc.constant('setRate' as const),
          gapMs,
          ratePerSec: rate,
          burst,
        }),
      },
    );

    it('holds for random rates, bursts, rate changes and arrival schedules', async () => {
      await fc.assert(
        fc.asyncProperty(
          rate,
          burst,
          fc.array(step, { maxLength: 60, size: 'max' }),
          async (r0, b0, steps) => {
            const clock = new ManualClock();
            const counting = countingClock(clock);
            const bucket = new TokenBucket({ ratePerSec: r0, burst: b0, clock: counting.view });
            // Piecewise rate, to integrate what the bucket may add over a window.
            const rates: { fromMs: number; ratePerSec: number }[] = [{ fromMs: 0, ratePerSec: r0 }];
            let maxBurst = b0;
            const admitted: { atMs: number; tokens: number }[] = [];
            // Admission order: ids of take() calls, and 'try' markers for tryTake successes.
            const order: (number | { tryAfter: number })[] = [];
            const takes: { id: number; granted: boolean; aborted: boolean }[] = [];

            for (const s of steps) {
              await clock.advance(s.gapMs);
              if (s.kind === 'take') {
                const id = takes.length;
                const entry = { id, granted: false, aborted: false };
                takes.push(entry);
                const controller = new AbortController();
                bucket.take(controller.signal).then(
                  () => {
                    entry.granted = true;
                    admitted.push({ atMs: clock.now(), tokens: 1 });
                    order.push(id);
                  },
                  () => (entry.aborted = true),
                );
                if (s.abortAfterMs !== null) {
                  clock.setTimeout(() => controller.abort(new Error('give up')), s.abortAfterMs);
                }
              } else if (s.kind === 'tryTake') {
                if (s.n <= bucket.burst && bucket.tryTake(s.n)) {
                  admitted.push({ atMs: clock.now(), tokens: s.n });
                  order.push({ tryAfter: takes.length });
                }
              } else {
                bucket.setRate(s.ratePerSec, s.burst);
                rates.push({ fromMs: clock.now(), ratePerSec: s.ratePerSec });
                maxBurst = Math.max(maxBurst, s.burst);
              }
              await clock.settle();
            }
            await clock.runAll();

            // Liveness: every take() was granted or aborted.
            for (const t of takes) expect(t.granted !== t.aborted).toBe(true);
            expect(bucket.waiting).toBe(0);
            // One timer at most, for the head waiter, however long the queue.
            expect(counting.maxLive()).toBeLessThanOrEqual(1);

            const refillBetween = (fromMs: number, toMs: number): number => {
              let total = 0;
              rates.forEach((seg, i) => {
                const segEnd = rates[i + 1]?.fromMs ?? Infinity;
                const lo = Math.max(fromMs, seg.fromMs);
                const hi = Math.min(toMs, segEnd);
                if (hi > lo) total += ((hi - lo) * seg.ratePerSec) / 1000;
              });
              return total;
            };
            for (let i = 0; i < admitted.length; i++) {
              let count = 0;
              for (let j = i; j < admitted.length; j++) {
                const a = admitted[i]!;
                const b = admitted[j]!;
                count += b.tokens;
                expect(count).toBeLessThanOrEqual(maxBurst + refillBetween(a.atMs, b.atMs) + 1e-6);
              }
            }

            // FIFO: granted takes in the order they were called; a tryTake success only
            // after every earlier take() was settled.
            const grantedIds = order.filter((o): o is number => typeof o === 'number');
            expect(grantedIds).toEqual([...grantedIds].sort((x, y) => x - y));
            order.forEach((o, pos) => {
              if (typeof o === 'number') return;
              for (const t of takes.slice(0, o.tryAfter)) {
                if (t.granted) expect(order.indexOf(t.id)).toBeLessThan(pos);
              }
            });
          },
        ),
        { numRuns: 150 },
      );
    });

    it('holds for a fixed rate with a window bound of burst + rate * w', async () => {
      await fc.assert(
        fc.asyncProperty(
          rate,
          burst,
          fc.array(fc.integer({ min: 0, max: 500 }), { minLength: 1, maxLength: 80, size: 'max' }),
          async (ratePerSec, b, gaps) => {
            const clock = new ManualClock();
            const bucket = new TokenBucket({ ratePerSec, burst: b, clock });
            const times: number[] = [];
            const ids: number[] = [];
            for (const [id, gap] of gaps.entries()) {
              await clock.advance(gap);
              void bucket.take().then(() => {
                times.push(clock.now());
                ids.push(id);
              });
            }
            await clock.runAll();
            expect(ids).toEqual(gaps.map((_, id) => id));
            for (let i = 0; i < times.length; i++) {
              for (let j = i; j < times.length; j++) {
                const windowMs = times[j]! - times[i]!;
                expect(j - i + 1).toBeLessThanOrEqual(b + (ratePerSec * windowMs) / 1000 + 1e-6);
              }
            }
          },
        ),
        { numRuns: 100 },
      );
    });
  });
});
