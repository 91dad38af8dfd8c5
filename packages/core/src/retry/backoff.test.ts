import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { seededRandom, type Random } from '../random/random.ts';
import { exponentialBackoff, type Jitter } from './backoff.ts';

/** A Random that returns the given values in turn, then repeats the last. */
function scripted(...values: number[]): Random {
  let i = 0;
  return () => values[Math.min(i++, values.length - 1)] ?? 0;
}

describe('exponentialBackoff', () => {
  it('without jitter doubles from baseMs and stops at capMs', () => {
    const backoff = exponentialBackoff({ baseMs: 100, capMs: 1000, jitter: 'none' });
    expect([1, 2, 3, 4, 5, 6].map((n) => backoff(n))).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  it('uses factor for the growth', () => {
    const backoff = exponentialBackoff({ baseMs: 10, capMs: 10_000, factor: 3, jitter: 'none' });
    expect([1, 2, 3].map((n) => backoff(n))).toEqual([10, 30, 90]);
  });

  it('full jitter scales the ceiling by the random draw', () => {
    const backoff = exponentialBackoff({
      baseMs: 100,
      capMs: 1000,
      random: scripted(0.5, 0, 0.25, 0.999),
    });
    expect(backoff(1)).toBe(50);
    expect(backoff(3)).toBe(0);
    expect(backoff(4)).toBe(200);
    expect(backoff(50)).toBeCloseTo(999, 6);
  });

  it('is full jitter by default, with baseMs 1000 and capMs 30 000', () => {
    const backoff = exponentialBackoff({ random: scripted(0.5) });
    expect(backoff(1)).toBe(500);
    expect(backoff(2)).toBe(1000);
    expect(backoff(20)).toBe(15_000);
  });

  it('decorrelated jitter draws between baseMs and 3 x the previous delay, capped', () => {
    const backoff = exponentialBackoff({
      baseMs: 100,
      capMs: 1000,
      jitter: 'decorrelated',
      random: scripted(0, 0.5, 0.999_999),
    });
    expect(backoff(1)).toBe(100); // base + 0 * (300 - 100)
    expect(backoff(2, 200)).toBe(350); // 100 + 0.5 * (600 - 100)
    expect(backoff(3, 900)).toBe(1000); // would be ~2700, capped
  });

  it('decorrelated jitter with no previous delay resumes from the previous ceiling', () => {
    // Attempt 4 restored from the outbox: previous ceiling 100 * 2^2 = 400, so the
    // draw spans [100, 1200], not [100, 300].
    const backoff = exponentialBackoff({
      baseMs: 100,
      capMs: 10_000,
      jitter: 'decorrelated',
      random: scripted(0.5),
    });
    expect(backoff(4)).toBe(650);
    expect(backoff(1)).toBe(200); // attempt 1: previous is baseMs, [100, 300]
  });

  it('keeps delays in bounds when the injected random misbehaves', () => {
    for (const value of [Number.NaN, -1, 1, 7]) {
      const full = exponentialBackoff({ baseMs: 100, capMs: 1000, random: () => value });
      const decorrelated = exponentialBackoff({
        baseMs: 100,
        capMs: 1000,
        jitter: 'decorrelated',
        random: () => value,
      });
      expect(full(3)).toBe(0);
      expect(decorrelated(3, 500)).toBe(100);
    }
  });

  it('decorrelated jitter survives a huge previous delay (no Infinity, no NaN)', () => {
    for (const value of [0, 0.5]) {
      const backoff = exponentialBackoff({
        baseMs: 100,
        capMs: 1000,
        jitter: 'decorrelated',
        random: () => value,
      });
      const delayMs = backoff(2, Number.MAX_VALUE);
      expect(delayMs).toBe(value === 0 ? 100 : 1000);
      expect(backoff(2, Number.POSITIVE_INFINITY)).toBeGreaterThanOrEqual(100);
      expect(backoff(2, -50)).toBe(value === 0 ? 100 : 200); // [100, 300] as if no previous
    }
  });

  it('refuses bad options with a TypeError that shows the value', () => {
    expect(() => exponentialBackoff({ baseMs: 0 })).toThrow(/baseMs.*got 0/);
    expect(() => exponentialBackoff({ baseMs: Number.NaN })).toThrow(/baseMs.*NaN/);
    expect(() => exponentialBackoff({ capMs: -1 })).toThrow(/capMs.*-1/);
    expect(() => exponentialBackoff({ baseMs: 500, capMs: 100 })).toThrow(/capMs.*>= baseMs.*100/);
    expect(() => exponentialBackoff({ factor: 0.5 })).toThrow(/factor.*0\.5/);
    expect(() => exponentialBackoff({ factor: Number.POSITIVE_INFINITY })).toThrow(/factor/);
    expect(() => exponentialBackoff({ jitter: 'equal' as Jitter })).toThrow(/jitter.*equal/);
    expect(() => exponentialBackoff({ random: 42 as unknown as Random })).toThrow(/random.*42/);
    expect(() => exponentialBackoff({ baseMs: 0 })).toThrow(TypeError);
  });

  it('refuses an attempt that is not an integer >= 1', () => {
    const backoff = exponentialBackoff();
    expect(() => backoff(0)).toThrow(/attempt.*got 0/);
    expect(() => backoff(1.5)).toThrow(/attempt.*1\.5/);
    expect(() => backoff(Number.NaN)).toThrow(TypeError);
  });
});

describe('exponentialBackoff properties', () => {
  const jitter = fc.constantFrom<Jitter>('full', 'decorrelated', 'none');
  const options = fc
    .record({
      baseMs: fc.double({ min: 0.001, max: 60_000, noNaN: true }),
      extraCapMs: fc.double({ min: 0, max: 600_000, noNaN: true }),
      factor: fc.double({ min: 1, max: 10, noNaN: true }),
      jitter,
      seed: fc.integer(),
    })
    .map(({ extraCapMs, ...rest }) => ({ ...rest, capMs: rest.baseMs + extraCapMs }));
  const attempt = fc.oneof(
    fc.integer({ min: 1, max: 64 }),
    fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
  );
  const previous = fc.option(fc.double({ noNaN: false }), { nil: undefined });

  it('every delay is finite, >= 0 (>= baseMs for decorrelated) and <= capMs', () => {
    fc.assert(
      fc.property(options, attempt, previous, (o, n, previousMs) => {
        const backoff = exponentialBackoff({ ...o, random: seededRandom(o.seed) });
        const delayMs = backoff(n, previousMs);
        expect(Number.isFinite(delayMs)).toBe(true);
        expect(delayMs).toBeGreaterThanOrEqual(o.jitter === 'decorrelated' ? o.baseMs : 0);
        expect(delayMs).toBeLessThanOrEqual(o.capMs);
      }),
      { numRuns: 2000 },
    );
  });

  it('a chained sequence stays in bounds, and the same seed replays it exactly', () => {
    fc.assert(
      fc.property(options, fc.integer({ min: 1, max: 40 }), (o, length) => {
        const run = (): number[] => {
          const backoff = exponentialBackoff({ ...o, random: seededRandom(o.seed) });
          const delays: number[] = [];
          let previousMs: number | undefined;
          for (let n = 1; n <= length; n++) {
            previousMs = backoff(n, previousMs);
            delays.push(previousMs);
          }
          return delays;
        };
        const first = run();
        expect(run()).toEqual(first);
        for (const delayMs of first) {
          expect(delayMs).toBeGreaterThanOrEqual(o.jitter === 'decorrelated' ? o.baseMs : 0);
          expect(delayMs).toBeLessThanOrEqual(o.capMs);
        }
      }),
    );
  });

  it('the full-jitter ceiling never shrinks as attempts grow', () => {
    fc.assert(
      fc.property(options, fc.integer({ min: 1, max: 100 }), (o, n) => {
        const backoff = exponentialBackoff({ ...o, jitter: 'none' });
        expect(backoff(n + 1)).toBeGreaterThanOrEqual(backoff(n));
      }),
    );
  });

  it('different seeds give different sequences', () => {
    const draw = (seed: number): number[] => {
      const backoff = exponentialBackoff({ random: seededRandom(seed) });
      return [1, 2, 3, 4, 5].map((n) => backoff(n));
    };
    expect(draw(1)).not.toEqual(draw(2));
  });
});
