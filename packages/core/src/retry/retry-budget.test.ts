import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Clock } from '../time/clock.ts';
import { ManualClock } from '../time/manual-clock.ts';
import { RetryBudget, type RetryBudgetState } from './retry-budget.ts';

describe('RetryBudget', () => {
  it('allows 5 attempts in 2 minutes by default', async () => {
    const clock = new ManualClock({ startMs: 1_000 });
    const budget = new RetryBudget({ clock });
    expect(budget.maxAttempts).toBe(5);
    expect(budget.maxTimeMs).toBe(120_000);
    for (let i = 0; i < 4; i++) {
      budget.recordAttempt();
      expect(budget.allows(1_000)).toBe(true);
      await clock.advance(1_000);
    }
    budget.recordAttempt();
    expect(budget.attempts).toBe(5);
    expect(budget.limitHit(0)).toBe('attempts');
    expect(budget.allows(0)).toBe(false);
  });

  it('counts time from the first attempt to the start of the next one', async () => {
    const clock = new ManualClock({ startMs: 50_000 });
    const budget = new RetryBudget({ clock, maxAttempts: 100, maxTimeMs: 10_000 });
    budget.recordAttempt();
    expect(budget.startedAtMs).toBe(50_000);
    await clock.advance(4_000);
    budget.recordAttempt();
    expect(budget.startedAtMs).toBe(50_000); // the second attempt does not restart it
    expect(budget.elapsedMs).toBe(4_000);
    expect(budget.limitHit(6_000)).toBeUndefined(); // starts exactly at the limit: fits
    expect(budget.limitHit(6_001)).toBe('time');
    await clock.advance(6_000);
    expect(budget.allows(0)).toBe(true);
    await clock.advance(1);
    expect(budget.limitHit()).toBe('time');
  });

  it('reports the attempt limit before the time limit when both are spent', async () => {
    const clock = new ManualClock();
    const budget = new RetryBudget({ clock, maxAttempts: 1, maxTimeMs: 10 });
    budget.recordAttempt();
    await clock.advance(100);
    expect(budget.limitHit()).toBe('attempts');
  });

  it('has not started before the first attempt, unless started explicitly', async () => {
    const clock = new ManualClock({ startMs: 7 });
    const budget = new RetryBudget({ clock, maxTimeMs: 100 });
    await clock.advance(1_000);
    expect(budget.startedAtMs).toBeUndefined();
    expect(budget.elapsedMs).toBe(0);
    expect(budget.allows(100)).toBe(true);
    expect(budget.allows(101)).toBe(false);
    budget.start();
    expect(budget.startedAtMs).toBe(1_007);
    expect(budget.attempts).toBe(0);
    await clock.advance(50);
    budget.start(); // idempotent
    expect(budget.startedAtMs).toBe(1_007);
    expect(budget.elapsedMs).toBe(50);
  });

  it('saves and restores as plain numbers that survive JSON', async () => {
    const clock = new ManualClock({ startMs: 1_000 });
    const budget = new RetryBudget({ clock, maxAttempts: 3, maxTimeMs: 5_000 });
    expect(budget.save()).toEqual({ attempts: 0 });
    budget.recordAttempt();
    await clock.advance(2_000);
    budget.recordAttempt();
    const saved = JSON.parse(JSON.stringify(budget.save())) as RetryBudgetState;
    expect(saved).toEqual({ attempts: 2, startedAtMs: 1_000 });

    const restored = new RetryBudget({ clock, maxAttempts: 3, maxTimeMs: 5_000, state: saved });
    expect(restored.attempts).toBe(2);
    expect(restored.elapsedMs).toBe(2_000);
    expect(restored.allows(3_000)).toBe(true);
    expect(restored.allows(3_001)).toBe(false);
    restored.recordAttempt();
    expect(restored.limitHit()).toBe('attempts');
    expect(restored.save()).toEqual({ attempts: 3, startedAtMs: 1_000 });
  });

  it('treats a start time in the future (clock went back) as no time spent', () => {
    const clock = new ManualClock({ startMs: 1_000 });
    const budget = new RetryBudget({
      clock,
      maxTimeMs: 100,
      state: { attempts: 1, startedAtMs: 9_000 },
    });
    expect(budget.elapsedMs).toBe(0);
    expect(budget.allows(100)).toBe(true);
  });

  it('accepts Infinity for no limit', async () => {
    const clock = new ManualClock();
    const budget = new RetryBudget({
      clock,
      maxAttempts: Number.POSITIVE_INFINITY,
      maxTimeMs: Number.POSITIVE_INFINITY,
    });
    for (let i = 0; i < 1000; i++) budget.recordAttempt();
    await clock.advance(1e12);
    expect(budget.allows(1e12)).toBe(true);
  });

  it('refuses bad options with a TypeError that shows the value', () => {
    const clock = new ManualClock();
    expect(() => new RetryBudget({ clock, maxAttempts: 0 })).toThrow(/maxAttempts.*got 0/);
    expect(() => new RetryBudget({ clock, maxAttempts: 2.5 })).toThrow(/maxAttempts.*2\.5/);
    expect(() => new RetryBudget({ clock, maxTimeMs: -1 })).toThrow(/maxTimeMs.*-1/);
    expect(() => new RetryBudget({ clock, maxTimeMs: Number.NaN })).toThrow(/maxTimeMs.*NaN/);
    expect(() => new RetryBudget({ clock, state: { attempts: -1 } })).toThrow(/attempts.*-1/);
    expect(
      () => new RetryBudget({ clock, state: { attempts: 1, startedAtMs: Number.NaN } }),
    ).toThrow(/startedAtMs.*NaN/);
    expect(() => new RetryBudget({ clock: undefined as unknown as Clock })).toThrow(/clock/);
    expect(() => new RetryBudget({ clock }).allows(-1)).toThrow(/delayMs.*-1/);
    expect(() => new RetryBudget({ clock }).allows(Number.NaN)).toThrow(TypeError);
  });

  it('property: allows(d) holds exactly when attempts and start time both fit', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 0, max: 100_000 }),
        fc.integer({ min: 0, max: 12 }),
        fc.integer({ min: 0, max: 200_000 }),
        fc.integer({ min: 0, max: 200_000 }),
        (maxAttempts, maxTimeMs, attempts, elapsedMs, delayMs) => {
          const clock = new ManualClock({ startMs: 1_000_000 + elapsedMs });
          const budget = new RetryBudget({
            clock,
            maxAttempts,
            maxTimeMs,
            state: { attempts, startedAtMs: 1_000_000 },
          });
          const fits = attempts < maxAttempts && elapsedMs + delayMs <= maxTimeMs;
          expect(budget.allows(delayMs)).toBe(fits);
        },
      ),
    );
  });
});
