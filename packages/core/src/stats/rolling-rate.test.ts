import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../time/manual-clock.ts';
import { RollingRate } from './rolling-rate.ts';

describe('RollingRate', () => {
  it('defaults to a 10 s window of 500 ms buckets', () => {
    const rate = new RollingRate({ clock: new ManualClock() });
    expect(rate.windowMs).toBe(10_000);
    expect(rate.bucketMs).toBe(500);
  });

  it('reads 0 before anything is recorded', async () => {
    const clock = new ManualClock();
    const rate = new RollingRate({ clock });
    expect(rate.ratePerSec()).toBe(0);
    await clock.advance(30_000);
    expect(rate.ratePerSec()).toBe(0);
    expect(rate.total).toBe(0);
  });

  it('measures a steady 10 events/s once the window is full', async () => {
    const clock = new ManualClock();
    const rate = new RollingRate({ clock });
    // Events mid-way between bucket edges (t = 50, 150, ...), so the count in the
    // measured span is exact: 95 events in [10.5 s, 20 s).
    for (let i = 0; i < 200; i++) {
      await clock.advanceTo(50 + i * 100);
      rate.record();
    }
    await clock.advanceTo(20_000);
    expect(rate.ratePerSec()).toBeCloseTo(10, 9);
    expect(rate.total).toBe(200);
  });

  it('divides by the time elapsed, not the whole window, while younger than one window', async () => {
    const clock = new ManualClock({ startMs: 1_000_000 });
    const rate = new RollingRate({ clock });
    rate.record(5);
    await clock.advance(2_000);
    // 5 events in 2 s; dividing by the 10 s window would say 0.5.
    expect(rate.ratePerSec()).toBeCloseTo(2.5, 9);
  });

  it('takes the span as at least one bucket, so a burst at the start is not infinite', () => {
    const rate = new RollingRate({ clock: new ManualClock(), bucketMs: 500 });
    rate.record(3);
    expect(rate.ratePerSec()).toBeCloseTo(6, 9); // 3 per 0.5 s
  });

  it('counts a record(n) as n events, fractions included', async () => {
    const clock = new ManualClock();
    const rate = new RollingRate({ clock, windowMs: 4_000, bucketMs: 1_000 });
    rate.record(2.5);
    rate.record(1.5);
    await clock.advance(2_000);
    expect(rate.total).toBe(4);
    expect(rate.ratePerSec()).toBeCloseTo(2, 9);
  });

  it('drops a bucket exactly when it leaves the window', async () => {
    const clock = new ManualClock();
    const rate = new RollingRate({ clock, windowMs: 10_000, bucketMs: 1_000 });
    await clock.advance(500);
    rate.record(10); // bucket [0, 1 s)
    await clock.advanceTo(9_999);
    expect(rate.ratePerSec()).toBeCloseTo(10_000 / 9_999, 9);
    await clock.advanceTo(10_000); // bucket [10 s, 11 s) opens and [0, 1 s) falls out
    expect(rate.ratePerSec()).toBe(0);
    expect(rate.total).toBe(10);
  });

  it('after an idle gap longer than the window, old events count for nothing', async () => {
    const clock = new ManualClock();
    const rate = new RollingRate({ clock, windowMs: 10_000, bucketMs: 500 });
    for (let i = 0; i < 100; i++) {
      rate.record();
      await clock.advance(10);
    }
    await clock.advance(60_000);
    expect(rate.ratePerSec()).toBe(0);
    // The stale slots were cleared, not merely skipped: a new event stands alone.
    rate.record();
    const t = clock.now();
    const bucketStart = Math.floor(t / 500) * 500;
    const spanMs = t - (bucketStart - 19 * 500);
    expect(rate.ratePerSec()).toBeCloseTo(1_000 / spanMs, 9);
    expect(rate.total).toBe(101);
  });

  it('after a gap just shorter than the window, the slots in between are cleared and the rest kept', async () => {
    const clock = new ManualClock();
    const rate = new RollingRate({ clock, windowMs: 5_000, bucketMs: 1_000 });
    // Fill every slot once, then wrap the ring partly: 3 stale slots are reused.
    for (let i = 0; i < 5; i++) {
      rate.record(1);
      await clock.advance(1_000);
    }
    // Now t = 5 s: buckets 1..5 in the ring (bucket 0 dropped); 4 events remain.
    await clock.advance(3_000); // t = 8 s: buckets 4..8, only bucket 4 has an event.
    expect(rate.ratePerSec()).toBeCloseTo(1_000 / 4_000, 9);
    rate.record(7);
    expect(rate.ratePerSec()).toBeCloseTo(8_000 / 4_000, 9);
  });

  it('clears lazily: a gap of 10^15 ms costs one pass over the ring, not one per bucket', async () => {
    const clock = new ManualClock();
    const rate = new RollingRate({ clock, windowMs: 10_000, bucketMs: 1 });
    rate.record();
    await clock.advance(1e15);
    expect(rate.ratePerSec()).toBe(0);
    rate.record(4);
    expect(rate.ratePerSec()).toBeGreaterThan(0);
  });

  it.each([
    [{ windowMs: 0 }, /windowMs must be a finite number > 0, got 0/],
    [{ windowMs: Number.NaN }, /windowMs .* got NaN/],
    [{ bucketMs: -1 }, /bucketMs must be a finite number > 0, got -1/],
    [{ windowMs: 1_000, bucketMs: 300 }, /whole multiple .* got windowMs 1000 and bucketMs 300/],
    [{ windowMs: 500, bucketMs: 500 }, /from 2 to .* got windowMs 500 and bucketMs 500/],
    [{ windowMs: 1e9, bucketMs: 1 }, /got windowMs 1000000000 and bucketMs 1/],
  ])('rejects %o with a TypeError showing the value', (options, message) => {
    expect(() => new RollingRate({ clock: new ManualClock(), ...options })).toThrow(TypeError);
    expect(() => new RollingRate({ clock: new ManualClock(), ...options })).toThrow(message);
  });

  it('rejects a clock without now()', () => {
    const clock = { setTimeout: () => 0 } as unknown as ManualClock;
    expect(() => new RollingRate({ clock })).toThrow(
      /clock must be a Clock \(with now\(\)\), got an object with keys \["setTimeout"\]/,
    );
    const notAClock = 42 as unknown as ManualClock;
    expect(() => new RollingRate({ clock: notAClock })).toThrow(/got 42/);
  });

  it('rejects a negative or non-finite count', () => {
    const rate = new RollingRate({ clock: new ManualClock() });
    expect(() => rate.record(-1)).toThrow(/count must be a finite number >= 0, got -1/);
    expect(() => rate.record(Number.POSITIVE_INFINITY)).toThrow(TypeError);
    expect(rate.total).toBe(0);
  });

  describe('against a brute-force count of every event', () => {
    // Granularity, as the class promises: with W = windowMs, B = bucketMs and e the
    // time since construction, the rate counts exactly the events at or after
    //   S = start + max(0, floor(e / B) - W / B + 1) * B
    // (the start of the oldest bucket in the ring) and divides by max(now - S, B).
    // Once e >= W, S lies in (now - W, now - W + B], so the rate is bounded by the
    // events of the ideal window (now - W, now] over W - B and those of
    // [now - W + B, now] over W.
    const setup = fc.record({
      startMs: fc.integer({ min: 0, max: 1e9 }),
      bucketMs: fc.integer({ min: 1, max: 1_000 }),
      buckets: fc.integer({ min: 2, max: 30 }),
      steps: fc.array(
        fc.record({
          advanceMs: fc.oneof(
            fc.integer({ min: 0, max: 200 }),
            fc.integer({ min: 0, max: 40_000 }),
          ),
          count: fc.integer({ min: 0, max: 5 }),
          query: fc.boolean(),
        }),
        { maxLength: 60 },
      ),
    });

    it('matches exactly over the span it measures, and the ideal window within one bucket', async () => {
      await fc.assert(
        fc.asyncProperty(setup, async ({ startMs, bucketMs, buckets, steps }) => {
          const windowMs = bucketMs * buckets;
          const clock = new ManualClock({ startMs });
          const rate = new RollingRate({ clock, windowMs, bucketMs });
          const events: { atMs: number; count: number }[] = [];
          const countWhere = (keep: (atMs: number) => boolean): number =>
            events.reduce((sum, e) => (keep(e.atMs) ? sum + e.count : sum), 0);

          const check = (): void => {
            const now = clock.now();
            const elapsedMs = now - startMs;
            const oldest = Math.max(0, Math.floor(elapsedMs / bucketMs) - buckets + 1);
            const sinceMs = startMs + oldest * bucketMs;
            const expected =
              (countWhere((t) => t >= sinceMs) * 1000) / Math.max(now - sinceMs, bucketMs);
            const actual = rate.ratePerSec();
            expect(actual).toBeCloseTo(expected, 9);
            if (elapsedMs >= windowMs) {
              const upper = (countWhere((t) => t > now - windowMs) * 1000) / (windowMs - bucketMs);
              const lower = (countWhere((t) => t >= now - windowMs + bucketMs) * 1000) / windowMs;
              expect(actual).toBeGreaterThanOrEqual(lower - 1e-9);
              expect(actual).toBeLessThanOrEqual(upper + 1e-9);
            }
          };

          for (const step of steps) {
            await clock.advance(step.advanceMs);
            if (step.count > 0) {
              rate.record(step.count);
              events.push({ atMs: clock.now(), count: step.count });
            }
            if (step.query) check();
          }
          check();
          expect(rate.total).toBe(countWhere(() => true));
        }),
        { numRuns: 200 },
      );
    });
  });
});
