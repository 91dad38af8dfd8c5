import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  ACCEPTED_WINDOW_MS,
  AdaptiveRate,
  CUBIC_C,
  MIN_RATE_PER_SEC,
  RATE_DECREASE_FACTOR,
} from './adaptive-rate.ts';
import { ManualClock } from '../time/manual-clock.ts';

/** Sends (and has accepted) `count` requests spread evenly over `ms`. */
async function acceptEvenly(
  rate: AdaptiveRate,
  clock: ManualClock,
  count: number,
  ms: number,
): Promise<void> {
  for (let i = 0; i < count; i++) {
    await clock.advance(ms / count);
    rate.recordSend();
    rate.recordAccepted();
  }
}

/** Sends at the controller's own pace for `ms`, every answer accepted. */
async function sendAtPace(rate: AdaptiveRate, clock: ManualClock, ms: number): Promise<number[]> {
  const seen: number[] = [];
  const endMs = clock.now() + ms;
  while (clock.now() < endMs) {
    const pace = rate.ratePerSec ?? 1000;
    await clock.advance(1000 / pace);
    rate.recordSend();
    rate.recordAccepted();
    seen.push(rate.ratePerSec ?? Number.POSITIVE_INFINITY);
  }
  return seen;
}

describe('AdaptiveRate', () => {
  it('refuses a ceiling that is not a positive number', () => {
    expect(() => new AdaptiveRate({ ceilingPerSec: 0 })).toThrow(/ceilingPerSec.*got 0/);
    expect(() => new AdaptiveRate({ ceilingPerSec: Number.NaN })).toThrow(/ceilingPerSec/);
  });

  it('starts unpaced without a ceiling and at the ceiling with one', () => {
    const clock = new ManualClock();
    expect(new AdaptiveRate({ clock }).ratePerSec).toBeUndefined();
    const capped = new AdaptiveRate({ clock, ceilingPerSec: 20 });
    expect(capped.ratePerSec).toBe(20);
    expect(capped.phase).toBe('ceiling');
    expect(capped.throttled).toBe(false);
  });

  it('measures the accepted rate over the last window only', async () => {
    const clock = new ManualClock();
    const rate = new AdaptiveRate({ clock });
    await acceptEvenly(rate, clock, 40, ACCEPTED_WINDOW_MS);
    // Counted in 50 ms slots: the oldest slot has just left the window.
    expect(rate.acceptedRatePerSec()).toBeGreaterThanOrEqual(38);
    expect(rate.acceptedRatePerSec()).toBeLessThanOrEqual(40);
    await clock.advance(ACCEPTED_WINDOW_MS);
    expect(rate.acceptedRatePerSec()).toBe(0);
  });

  it('cuts the first throttle to a fraction of what was accepted, then doubles', async () => {
    const clock = new ManualClock();
    const rate = new AdaptiveRate({ clock });
    await acceptEvenly(rate, clock, 10, ACCEPTED_WINDOW_MS);
    expect(rate.recordThrottle(rate.recordSend())).toBe(true);
    expect(rate.phase).toBe('discovery');
    expect(rate.throttled).toBe(true);
    expect(rate.ratePerSec).toBeCloseTo(10 * RATE_DECREASE_FACTOR, 6);
    const seen = await sendAtPace(rate, clock, 2000);
    // Four doublings in two seconds of sending at the pace, give or take one step.
    expect(seen.at(-1)).toBeGreaterThan(8 * 2 ** 3.5);
    expect(seen.at(-1)).toBeLessThan(8 * 2 ** 4.5);
  });

  it('after a later throttle, returns to the throttled rate in K seconds and plateaus there', async () => {
    const clock = new ManualClock();
    const rate = new AdaptiveRate({ clock });
    await acceptEvenly(rate, clock, 10, 100);
    rate.recordThrottle(rate.recordSend());
    await sendAtPace(rate, clock, 1500);
    const accepted = rate.acceptedRatePerSec();
    const before = rate.ratePerSec ?? 0;
    expect(rate.recordThrottle(rate.recordSend())).toBe(true);
    const wMax = Math.min(accepted, before);
    expect(rate.phase).toBe('cubic');
    expect(rate.lastThrottledRatePerSec).toBeCloseTo(wMax, 6);
    expect(rate.ratePerSec).toBeCloseTo(wMax * RATE_DECREASE_FACTOR, 6);
    const kMs = 1000 * Math.cbrt((wMax * (1 - RATE_DECREASE_FACTOR)) / CUBIC_C);
    await sendAtPace(rate, clock, kMs);
    expect(rate.ratePerSec).toBeGreaterThan(wMax * 0.99);
    expect(rate.ratePerSec).toBeLessThan(wMax * 1.01);
  });

  it('ignores throttles of requests sent before the last cut', async () => {
    const clock = new ManualClock();
    const rate = new AdaptiveRate({ clock });
    await acceptEvenly(rate, clock, 20, 1000);
    const early = rate.recordSend();
    const alsoEarly = rate.recordSend();
    expect(rate.recordThrottle(early)).toBe(true);
    const after = rate.ratePerSec;
    expect(rate.recordThrottle(alsoEarly)).toBe(false);
    expect(rate.ratePerSec).toBe(after);
    expect(rate.recordThrottle(rate.recordSend())).toBe(true);
    expect(rate.ratePerSec).toBeLessThan(after ?? 0);
  });

  it('never goes below the floor, even when nothing was accepted', () => {
    const clock = new ManualClock();
    const rate = new AdaptiveRate({ clock });
    for (let i = 0; i < 50; i++) rate.recordThrottle(rate.recordSend());
    expect(rate.ratePerSec).toBe(MIN_RATE_PER_SEC);
  });

  it('keeps its rate through a long quiet period', async () => {
    const clock = new ManualClock();
    const rate = new AdaptiveRate({ clock });
    await acceptEvenly(rate, clock, 30, 1000);
    rate.recordThrottle(rate.recordSend());
    await sendAtPace(rate, clock, 3000);
    rate.recordThrottle(rate.recordSend());
    await sendAtPace(rate, clock, 1000);
    const before = rate.ratePerSec ?? 0;
    await clock.advance(3_600_000);
    expect(rate.ratePerSec).toBe(before);
    rate.recordSend();
    // The first send after the quiet moves the curve by one interval at most.
    expect(rate.ratePerSec).toBeLessThan(before * 1.05);
  });

  describe('properties', () => {
    type Step =
      { kind: 'wait'; ms: number } | { kind: 'send'; accepted: boolean } | { kind: 'throttle' };
    const step: fc.Arbitrary<Step> = fc.oneof(
      fc.record({ kind: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 5000 }) }),
      fc.record({ kind: fc.constant('send' as const), accepted: fc.boolean() }),
      fc.record({ kind: fc.constant('throttle' as const) }),
    );
    const ceiling = fc.option(fc.double({ min: 0.5, max: 500, noNaN: true }), { nil: undefined });

    /** Runs the steps; `check` sees the rate before and after each. */
    async function run(
      ceilingPerSec: number | undefined,
      steps: readonly Step[],
      check: (s: Step, before: number | undefined, after: number | undefined, cut: boolean) => void,
    ): Promise<void> {
      const clock = new ManualClock();
      const rate = new AdaptiveRate({
        clock,
        ...(ceilingPerSec === undefined ? {} : { ceilingPerSec }),
      });
      let ticket = 0;
      for (const s of steps) {
        const before = rate.ratePerSec;
        let cut = false;
        if (s.kind === 'wait') await clock.advance(s.ms);
        else if (s.kind === 'send') {
          ticket = rate.recordSend();
          if (s.accepted) rate.recordAccepted();
        } else {
          cut = rate.recordThrottle(ticket);
        }
        check(s, before, rate.ratePerSec, cut);
      }
    }

    it('never paces above the ceiling or below the floor', async () => {
      await fc.assert(
        fc.asyncProperty(ceiling, fc.array(step, { maxLength: 80 }), async (ceil, steps) => {
          await run(ceil, steps, (_s, _before, after) => {
            if (after === undefined) {
              expect(ceil).toBeUndefined();
              return;
            }
            expect(after).toBeLessThanOrEqual(ceil ?? Number.POSITIVE_INFINITY);
            expect(after).toBeGreaterThanOrEqual(Math.min(MIN_RATE_PER_SEC, ceil ?? 1));
          });
        }),
        { numRuns: 150 },
      );
    });

    it('a counted throttle always cuts (to at most the decrease factor, or the floor)', async () => {
      await fc.assert(
        fc.asyncProperty(ceiling, fc.array(step, { maxLength: 80 }), async (ceil, steps) => {
          await run(ceil, steps, (s, before, after, cut) => {
            if (s.kind !== 'throttle' || !cut) return;
            expect(after).toBeDefined();
            const bound = Math.max(
              MIN_RATE_PER_SEC,
              (before ?? Number.POSITIVE_INFINITY) * RATE_DECREASE_FACTOR,
            );
            expect(after).toBeLessThanOrEqual(Math.min(bound, ceil ?? Number.POSITIVE_INFINITY));
          });
        }),
        { numRuns: 150 },
      );
    });

    it('only a throttle lowers the rate: recovery is monotone between throttles', async () => {
      await fc.assert(
        fc.asyncProperty(ceiling, fc.array(step, { maxLength: 80 }), async (ceil, steps) => {
          await run(ceil, steps, (s, before, after) => {
            if (s.kind === 'throttle' || before === undefined) return;
            expect(after).toBeGreaterThanOrEqual(before - 1e-9);
          });
        }),
        { numRuns: 150 },
      );
    });

    it('time alone changes nothing: a quiet period leaves the rate as it was', async () => {
      await fc.assert(
        fc.asyncProperty(
          ceiling,
          fc.array(step, { maxLength: 60 }),
          fc.integer({ min: 1, max: 86_400_000 }),
          async (ceil, steps, quietMs) => {
            const clock = new ManualClock();
            const rate = new AdaptiveRate({
              clock,
              ...(ceil === undefined ? {} : { ceilingPerSec: ceil }),
            });
            let ticket = 0;
            for (const s of steps) {
              if (s.kind === 'wait') await clock.advance(s.ms);
              else if (s.kind === 'send') ticket = rate.recordSend();
              else rate.recordThrottle(ticket);
            }
            const before = rate.ratePerSec;
            await clock.advance(quietMs);
            expect(rate.ratePerSec).toBe(before);
          },
        ),
        { numRuns: 100 },
      );
    });
  });
});
