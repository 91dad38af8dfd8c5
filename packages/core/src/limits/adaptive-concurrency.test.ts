import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  AdaptiveConcurrency,
  type AdaptiveConcurrencyChange,
  type AdaptiveConcurrencyOptions,
} from './adaptive-concurrency.ts';
import { ManualClock } from '../time/manual-clock.ts';
import { Semaphore } from './semaphore.ts';

function make(options: Omit<AdaptiveConcurrencyOptions, 'clock'>, clock = new ManualClock()) {
  const limiter = new AdaptiveConcurrency({ ...options, clock });
  const changes: AdaptiveConcurrencyChange[] = [];
  limiter.on('change', (change) => changes.push(change));
  return { limiter, clock, changes };
}

describe('AdaptiveConcurrency', () => {
  it('rejects bad options with a TypeError that shows the value', () => {
    expect(() => make({ max: 0 })).toThrow(/max must be an integer >= 1, got 0/);
    expect(() => make({ min: 3, max: 2 })).toThrow(/max must be an integer >= 3, got 2/);
    expect(() => make({ max: 4, initial: 5 })).toThrow(/initial must be <= max \(4\), got 5/);
    expect(() => make({ max: 4, decreaseFactor: 1 })).toThrow(/decreaseFactor .* got 1/);
    expect(() => make({ max: 4, decreaseFactor: 0 })).toThrow(/got 0/);
    expect(() => make({ max: 4, cooldownMs: -1 })).toThrow(/cooldownMs .* got -1/);
    expect(() => make({ max: 4, successesPerIncrease: 0 })).toThrow(/successesPerIncrease/);
  });

  it('starts at max unless told otherwise', () => {
    expect(make({ max: 8 }).limiter.limit).toBe(8);
    expect(make({ max: 8, initial: 2 }).limiter.limit).toBe(2);
  });

  it('grows by one per window of successes, the window being the current limit', () => {
    const { limiter, changes } = make({ max: 10, initial: 2 });
    limiter.recordSuccess();
    expect(limiter.limit).toBe(2);
    limiter.recordSuccess();
    expect(limiter.limit).toBe(3);
    for (let i = 0; i < 2; i++) limiter.recordSuccess();
    expect(limiter.limit).toBe(3);
    limiter.recordSuccess();
    expect(limiter.limit).toBe(4);
    expect(changes).toEqual([
      { limit: 3, previous: 2, reason: 'increase' },
      { limit: 4, previous: 3, reason: 'increase' },
    ]);
  });

  it('a fixed successesPerIncrease overrides the TCP-like window', () => {
    const { limiter } = make({ max: 10, initial: 5, successesPerIncrease: 2 });
    limiter.recordSuccess();
    limiter.recordSuccess();
    expect(limiter.limit).toBe(6);
  });

  it('never grows past max, and successes at max are not banked', async () => {
    const { limiter, clock } = make({ max: 4, initial: 4, cooldownMs: 0 });
    for (let i = 0; i < 100; i++) limiter.recordSuccess();
    expect(limiter.limit).toBe(4);
    await clock.advance(1);
    limiter.recordOverload();
    expect(limiter.limit).toBe(2);
    limiter.recordSuccess();
    expect(limiter.limit).toBe(2);
  });

  it('multiplies down on overload, never below min', async () => {
    const { limiter, clock, changes } = make({ min: 2, max: 16, cooldownMs: 100 });
    limiter.recordOverload();
    expect(limiter.limit).toBe(8);
    await clock.advance(100);
    limiter.recordOverload();
    expect(limiter.limit).toBe(4);
    await clock.advance(100);
    limiter.recordOverload();
    await clock.advance(100);
    limiter.recordOverload();
    expect(limiter.limit).toBe(2);
    expect(changes.map((c) => c.limit)).toEqual([8, 4, 2]);
    expect(changes.every((c) => c.reason === 'decrease')).toBe(true);
  });

  it('a burst of overloads within the cooldown counts as one decrease', async () => {
    const { limiter, clock, changes } = make({ max: 16, cooldownMs: 1000 });
    limiter.recordOverload();
    await clock.advance(500);
    limiter.recordOverload();
    await clock.advance(499);
    limiter.recordOverload();
    expect(limiter.limit).toBe(8);
    await clock.advance(1);
    limiter.recordOverload();
    expect(limiter.limit).toBe(4);
    expect(changes).toHaveLength(2);
  });

  it('an overload resets the success count toward the next increase', async () => {
    const { limiter, clock } = make({ max: 16, initial: 4, successesPerIncrease: 3 });
    limiter.recordSuccess();
    limiter.recordSuccess();
    limiter.recordOverload();
    await clock.advance(0);
    limiter.recordSuccess();
    expect(limiter.limit).toBe(2);
    limiter.recordSuccess();
    limiter.recordSuccess();
    expect(limiter.limit).toBe(3);
  });

  it('drives a semaphore through the change event', async () => {
    const { limiter } = make({ max: 4 });
    const semaphore = new Semaphore({ limit: limiter.limit });
    const off = limiter.on('change', ({ limit }) => semaphore.setLimit(limit));
    limiter.recordOverload();
    expect(semaphore.limit).toBe(2);
    off();
    for (let i = 0; i < 2; i++) limiter.recordSuccess();
    expect(limiter.limit).toBe(3);
    expect(semaphore.limit).toBe(2);
    await semaphore[Symbol.asyncDispose]();
  });

  describe('properties', () => {
    type Event = { kind: 'success' } | { kind: 'overload' } | { kind: 'advance'; ms: number };
    const event: fc.Arbitrary<Event> = fc.oneof(
      { weight: 5, arbitrary: fc.constant({ kind: 'success' as const }) },
      { weight: 2, arbitrary: fc.constant({ kind: 'overload' as const }) },
      {
        weight: 2,
        arbitrary: fc.record({
          kind: fc.constant('advance' as const),
          ms: fc.integer({ min: 0, max: 3000 }),
        }),
      },
    );
    const config = fc
      .record({
        min: fc.integer({ min: 1, max: 5 }),
        span: fc.integer({ min: 0, max: 40 }),
        start: fc.double({ min: 0, max: 1, noNaN: true }),
        successesPerIncrease: fc.option(fc.integer({ min: 1, max: 5 }), { nil: undefined }),
        decreaseFactor: fc.double({ min: 0.05, max: 0.95, noNaN: true }),
        cooldownMs: fc.integer({ min: 0, max: 2000 }),
      })
      .map(({ min, span, start, successesPerIncrease, ...rest }) => ({
        min,
        max: min + span,
        initial: min + Math.floor(start * span),
        ...(successesPerIncrease === undefined ? {} : { successesPerIncrease }),
        ...rest,
      }));

    it('the limit is always an integer within [min, max], and changes are reported', async () => {
      await fc.assert(
        fc.asyncProperty(
          config,
          fc.array(event, { maxLength: 200, size: 'max' }),
          async (options, events) => {
            const { limiter, clock, changes } = make(options);
            let seen = limiter.limit;
            for (const e of events) {
              const before = limiter.limit;
              if (e.kind === 'success') limiter.recordSuccess();
              else if (e.kind === 'overload') limiter.recordOverload();
              else await clock.advance(e.ms);
              const after = limiter.limit;
              expect(Number.isInteger(after)).toBe(true);
              expect(after).toBeGreaterThanOrEqual(options.min);
              expect(after).toBeLessThanOrEqual(options.max);
              // Up by at most one on a success; never up on an overload.
              if (e.kind === 'success')
                expect(after - before === 0 || after - before === 1).toBe(true);
              if (e.kind === 'overload') expect(after).toBeLessThanOrEqual(before);
              if (after !== before) {
                expect(changes.at(-1)).toEqual({
                  limit: after,
                  previous: seen,
                  reason: after > before ? 'increase' : 'decrease',
                });
                seen = after;
              }
            }
          },
        ),
        { numRuns: 150 },
      );
    });

    it('a burst of overloads within the cooldown decreases once', async () => {
      await fc.assert(
        fc.asyncProperty(
          config,
          fc.array(fc.integer({ min: 0, max: 1000 }), { minLength: 1, maxLength: 30, size: 'max' }),
          fc.array(fc.boolean(), { maxLength: 30, size: 'max' }),
          async (options, offsets, successesBetween) => {
            const cooldownMs = Math.max(1, options.cooldownMs);
            const { limiter, clock, changes } = make({ ...options, cooldownMs });
            const before = limiter.limit;
            // Overloads at sorted offsets, all before the cooldown ends; successes mixed in.
            const times = offsets.map((o) => o % cooldownMs).sort((a, b) => a - b);
            for (const [i, t] of times.entries()) {
              await clock.advanceTo(t);
              limiter.recordOverload();
              if (successesBetween[i]) limiter.recordSuccess();
            }
            const expected = Math.max(options.min, Math.floor(before * options.decreaseFactor));
            const decreases = changes.filter((c) => c.reason === 'decrease');
            expect(decreases).toEqual(
              expected < before ? [{ limit: expected, previous: before, reason: 'decrease' }] : [],
            );
            if (!successesBetween.some(Boolean)) expect(limiter.limit).toBe(expected);
          },
        ),
        { numRuns: 300 },
      );
    });
  });
});
