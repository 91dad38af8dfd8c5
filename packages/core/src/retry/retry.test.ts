import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CircuitOpenError,
  HttpError,
  NetworkError,
  RetryBudgetError,
  TimeoutError,
} from '../errors/upsync-error.ts';
import { seededRandom } from '../random/random.ts';
import { ManualClock } from '../time/manual-clock.ts';
import { exponentialBackoff } from './backoff.ts';
import type { ClassifyErrorOptions } from './classify.ts';
import { RetryBudget } from './retry-budget.ts';
import { retry, type RetryEvent } from './retry.ts';

type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** Attaches handlers at once, so a rejection while the clock runs is never "unhandled". */
function capture<T>(promise: Promise<T>): Promise<Outcome<T>> {
  return promise.then(
    (value) => ({ ok: true, value }),
    (error: unknown) => ({ ok: false, error }),
  );
}

/**
 * An operation that fails with the given errors in turn, then returns 'ok'.
 * It records the clock time of every call.
 */
function scripted(clock: ManualClock, failures: readonly Error[]) {
  const callTimes: number[] = [];
  const fn = (): Promise<string> => {
    callTimes.push(clock.now());
    const failure = failures[callTimes.length - 1];
    return failure ? Promise.reject(failure) : Promise.resolve('ok');
  };
  return { fn, callTimes };
}

const steady = (baseMs = 100, capMs = 100_000) =>
  exponentialBackoff({ baseMs, capMs, jitter: 'none' });

describe('retry', () => {
  it('returns the first success without waiting', async () => {
    const clock = new ManualClock();
    const events: RetryEvent[] = [];
    const seen: unknown[] = [];
    const value = await retry(
      (attempt) => {
        seen.push(attempt);
        return Promise.resolve(42);
      },
      { clock, onRetry: (e) => events.push(e) },
    );
    expect(value).toBe(42);
    expect(seen).toEqual([{ attempt: 1, signal: undefined }]);
    expect(events).toEqual([]);
    expect(clock.pendingTimers).toBe(0);
  });

  it('retries transient failures after the backoff, and reports each retry', async () => {
    const clock = new ManualClock({ startMs: 1_000 });
    const first = new NetworkError('reset');
    const second = new TimeoutError('slow', 5_000);
    const { fn, callTimes } = scripted(clock, [first, second]);
    const events: RetryEvent[] = [];
    const result = capture(retry(fn, { clock, backoff: steady(), onRetry: (e) => events.push(e) }));

    await clock.advance(99);
    expect(callTimes).toEqual([1_000]); // not a moment early
    await clock.advance(1);
    expect(callTimes).toEqual([1_000, 1_100]);
    await clock.runAll();
    expect(await result).toEqual({ ok: true, value: 'ok' });
    expect(callTimes).toEqual([1_000, 1_100, 1_300]);
    expect(events.map(({ attempt, delayMs, error }) => ({ attempt, delayMs, error }))).toEqual([
      { attempt: 1, delayMs: 100, error: first },
      { attempt: 2, delayMs: 200, error: second },
    ]);
    expect(events[1]?.decision).toMatchObject({ action: 'retry', reason: 'timeout' });
  });

  it('passes each call its attempt number and the signal', async () => {
    const clock = new ManualClock();
    const { signal } = new AbortController();
    const seen: number[] = [];
    const result = capture(
      retry(
        ({ attempt, signal: given }) => {
          expect(given).toBe(signal);
          seen.push(attempt);
          return attempt < 3 ? Promise.reject(new NetworkError('x')) : Promise.resolve(attempt);
        },
        { clock, backoff: steady(), signal },
      ),
    );
    await clock.runAll();
    expect(await result).toEqual({ ok: true, value: 3 });
    expect(seen).toEqual([1, 2, 3]);
  });

  it('rethrows a failure that is not retryable at once, as it is', async () => {
    for (const error of [
      new HttpError(422, 'refused'),
      new HttpError(401, 'who are you'),
      new TypeError('a bug'),
    ]) {
      const clock = new ManualClock();
      const { fn, callTimes } = scripted(clock, [error]);
      let retries = 0;
      const outcome = await capture(retry(fn, { clock, onRetry: () => retries++ }));
      expect(outcome).toEqual({ ok: false, error });
      expect(callTimes).toEqual([0]);
      expect(retries).toBe(0);
      expect(clock.pendingTimers).toBe(0);
    }
  });

  it('rejects with RetryBudgetError, caused by the last failure, when attempts run out', async () => {
    const clock = new ManualClock();
    const failures = [new NetworkError('a'), new NetworkError('b'), new NetworkError('c')];
    const { fn, callTimes } = scripted(clock, [...failures, new NetworkError('never')]);
    const budget = new RetryBudget({ clock, maxAttempts: 3 });
    const result = capture(retry(fn, { clock, backoff: steady(), budget }));
    await clock.runAll();
    const outcome = await result;
    expect(callTimes).toEqual([0, 100, 300]);
    expect(outcome.ok).toBe(false);
    const error = (outcome as { error: RetryBudgetError }).error;
    expect(error).toBeInstanceOf(RetryBudgetError);
    expect(error.cause).toBe(failures[2]);
    expect(error.attempts).toBe(3);
    expect(error.message).toMatch(/3 attempts/);
    expect(budget.attempts).toBe(3);
    expect(clock.now()).toBe(300); // it does not wait before giving up
  });

  it('gives up without waiting when the next attempt would start after the retry time', async () => {
    const clock = new ManualClock();
    const { fn, callTimes } = scripted(
      clock,
      Array.from({ length: 10 }, () => new NetworkError('x')),
    );
    const budget = new RetryBudget({ clock, maxAttempts: 100, maxTimeMs: 1_000 });
    const result = capture(retry(fn, { clock, backoff: steady(400), budget }));
    await clock.runAll();
    const outcome = await result;
    // Calls at 0 and 400; the next would start at 400 + 800 > 1000.
    expect(callTimes).toEqual([0, 400]);
    expect(clock.now()).toBe(400);
    expect((outcome as { error: unknown }).error).toBeInstanceOf(RetryBudgetError);
    expect(String((outcome as { error: unknown }).error)).toMatch(/1000 ms retry time/);
  });

  it('defaults to 5 attempts', async () => {
    const clock = new ManualClock();
    const { fn, callTimes } = scripted(
      clock,
      Array.from({ length: 10 }, () => new NetworkError('x')),
    );
    const result = capture(retry(fn, { clock, backoff: steady(10) }));
    await clock.runAll();
    expect((await result).ok).toBe(false);
    expect(callTimes).toHaveLength(5);
  });

  it('waits for Retry-After when it is longer than the backoff', async () => {
    const clock = new ManualClock();
    const { fn, callTimes } = scripted(clock, [
      new HttpError(429, 'slow down', { retryAfterMs: 5_000 }),
      new HttpError(429, 'slow down', { retryAfterMs: 50 }),
    ]);
    const result = capture(retry(fn, { clock, backoff: steady() }));
    await clock.runAll();
    expect(await result).toEqual({ ok: true, value: 'ok' });
    // max(100, 5000), then max(200, 50).
    expect(callTimes).toEqual([0, 5_000, 5_200]);
  });

  it('caps each wait at maxDelayMs', async () => {
    const clock = new ManualClock();
    const { fn, callTimes } = scripted(clock, [
      new HttpError(503, 'down', { retryAfterMs: 300_000 }),
      new NetworkError('x'),
    ]);
    const delays: number[] = [];
    const result = capture(
      retry(fn, {
        clock,
        backoff: steady(60_000),
        maxDelayMs: 10_000,
        onRetry: (e) => delays.push(e.delayMs),
      }),
    );
    await clock.runAll();
    expect(await result).toEqual({ ok: true, value: 'ok' });
    expect(delays).toEqual([10_000, 10_000]);
    expect(callTimes).toEqual([0, 10_000, 20_000]);
  });

  it('reports a 503 with Retry-After as a host pause in onRetry', async () => {
    const clock = new ManualClock();
    const { fn } = scripted(clock, [new HttpError(503, 'down', { retryAfterMs: 2_000 })]);
    const events: RetryEvent[] = [];
    const result = capture(retry(fn, { clock, backoff: steady(), onRetry: (e) => events.push(e) }));
    await clock.runAll();
    await result;
    expect(events[0]?.decision).toMatchObject({ pauseHost: true, retryAfterMs: 2_000 });
    expect(events[0]?.delayMs).toBe(2_000);
  });

  it('a call refused by an open breaker uses no attempt, and waits for its retry time', async () => {
    const clock = new ManualClock();
    let calls = 0;
    const callTimes: number[] = [];
    const fn = (): Promise<string> => {
      callTimes.push(clock.now());
      calls++;
      if (calls <= 3) return Promise.reject(new CircuitOpenError('open', 5_000));
      if (calls === 4) return Promise.reject(new NetworkError('reset'));
      return Promise.resolve('ok');
    };
    const budget = new RetryBudget({ clock, maxAttempts: 2 });
    const result = capture(retry(fn, { clock, backoff: steady(), budget }));
    await clock.runAll();
    expect(await result).toEqual({ ok: true, value: 'ok' });
    expect(budget.attempts).toBe(1);
    // Refused at 0 (wait 5000), at 5000 (probe time passed: backoff 200), at 5200
    // (backoff 400); the network failure at 5600 is the 4th call: backoff 100 * 2^3.
    expect(callTimes).toEqual([0, 5_000, 5_200, 5_600, 6_400]);
  });

  it('time spent refused by an open breaker still counts against the retry time', async () => {
    const clock = new ManualClock();
    const callTimes: number[] = [];
    const refusals: CircuitOpenError[] = [];
    const fn = (): Promise<string> => {
      callTimes.push(clock.now());
      const refusal = new CircuitOpenError('open', clock.now() + 6_000);
      refusals.push(refusal);
      return Promise.reject(refusal);
    };
    const budget = new RetryBudget({ clock, maxTimeMs: 10_000 });
    const result = capture(retry(fn, { clock, backoff: steady(), budget }));
    await clock.runAll();
    const outcome = await result;
    expect(callTimes).toEqual([0, 6_000]); // the next would start at 12 000
    const error = (outcome as { error: RetryBudgetError }).error;
    expect(error).toBeInstanceOf(RetryBudgetError);
    expect(error.attempts).toBe(0);
    expect(error.cause).toBe(refusals[1]);
  });

  it('rejects with signal.reason at once when aborted during a wait', async () => {
    const clock = new ManualClock();
    const controller = new AbortController();
    const { fn, callTimes } = scripted(clock, [new NetworkError('x')]);
    const result = capture(
      retry(fn, { clock, backoff: steady(10_000), signal: controller.signal }),
    );
    await clock.advance(1_000);
    expect(clock.pendingTimers).toBe(1);
    const reason = new Error('shutdown');
    controller.abort(reason);
    expect(await result).toEqual({ ok: false, error: reason });
    expect(clock.now()).toBe(1_000);
    expect(clock.pendingTimers).toBe(0);
    await clock.runAll();
    expect(callTimes).toEqual([0]);
  });

  it('rejects with signal.reason without calling when already aborted', async () => {
    const clock = new ManualClock();
    const controller = new AbortController();
    const reason = new Error('gone');
    controller.abort(reason);
    const { fn, callTimes } = scripted(clock, []);
    await expect(retry(fn, { clock, signal: controller.signal })).rejects.toBe(reason);
    expect(callTimes).toEqual([]);
  });

  it('rejects with signal.reason, not the call error, when aborted during a call', async () => {
    const clock = new ManualClock();
    const controller = new AbortController();
    const reason = new Error('stop');
    const result = retry(
      () => {
        controller.abort(reason);
        return Promise.reject(new NetworkError('cut off by the abort'));
      },
      { clock, signal: controller.signal },
    );
    await expect(result).rejects.toBe(reason);
    expect(clock.pendingTimers).toBe(0);
  });

  it('carries on a restored budget, and refuses to start one already spent', async () => {
    const clock = new ManualClock({ startMs: 10_000 });
    const spent = new RetryBudget({ clock, maxAttempts: 3, state: { attempts: 3 } });
    const { fn, callTimes } = scripted(clock, []);
    const outcome = await capture(retry(fn, { clock, budget: spent }));
    expect((outcome as { error: unknown }).error).toBeInstanceOf(RetryBudgetError);
    expect(callTimes).toEqual([]);

    const restored = new RetryBudget({
      clock,
      maxAttempts: 5,
      state: { attempts: 2, startedAtMs: 9_000 },
    });
    const second = scripted(clock, [new NetworkError('x'), new NetworkError('y')]);
    const result = capture(retry(second.fn, { clock, backoff: steady(), budget: restored }));
    await clock.runAll();
    expect(await result).toEqual({ ok: true, value: 'ok' });
    // The backoff resumes at attempts 3 and 4: 400 and 800, not 100 and 200.
    expect(second.callTimes).toEqual([10_000, 10_400, 11_200]);
    expect(restored.save()).toEqual({ attempts: 4, startedAtMs: 9_000 });
  });

  it('passes the context, the time and the signal to the classifier', async () => {
    const clock = new ManualClock({ startMs: 77 });
    const { signal } = new AbortController();
    const seen: ClassifyErrorOptions[] = [];
    const error = new HttpError(404, 'absent');
    const outcome = await capture(
      retry(() => Promise.reject(error), {
        clock,
        signal,
        context: { method: 'DELETE', target: 'item' },
        classify: (_error, options) => {
          seen.push(options);
          return { action: 'done', status: 404 };
        },
      }),
    );
    expect(outcome).toEqual({ ok: false, error });
    expect(seen).toEqual([{ method: 'DELETE', target: 'item', nowMs: 77, signal }]);
  });

  it('the same seed replays the same waits', async () => {
    const run = async (seed: number): Promise<number[]> => {
      const clock = new ManualClock();
      const { fn, callTimes } = scripted(
        clock,
        Array.from({ length: 4 }, () => new NetworkError('x')),
      );
      const backoff = exponentialBackoff({ random: seededRandom(seed) });
      const result = capture(retry(fn, { clock, backoff }));
      await clock.runAll();
      await result;
      return callTimes;
    };
    const first = await run(7);
    expect(first).toHaveLength(5);
    expect(await run(7)).toEqual(first);
    expect(await run(8)).not.toEqual(first);
  });

  it('refuses bad options with a TypeError', async () => {
    const clock = new ManualClock();
    await expect(retry(() => Promise.resolve(1), { clock, maxDelayMs: -5 })).rejects.toThrow(
      /maxDelayMs.*-5/,
    );
    await expect(retry(42 as unknown as () => Promise<void>, { clock })).rejects.toThrow(
      /fn must be a function/,
    );
  });

  it('property: waits add up, stay capped, and the budget holds for any failure script', async () => {
    const failure = fc.oneof(
      fc.constant(() => new NetworkError('reset')),
      fc.constant(() => new TimeoutError('slow', 1)),
      fc
        .integer({ min: 0, max: 400_000 })
        .map((ms) => () => new HttpError(429, 'x', { retryAfterMs: ms })),
      fc.constantFrom(500, 502, 503, 504, 408).map((status) => () => new HttpError(status, 'x')),
      fc.constant(() => new HttpError(422, 'refused')),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(failure, { maxLength: 12 }),
        fc.integer(),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 0, max: 200_000 }),
        async (script, seed, maxAttempts, maxTimeMs) => {
          const clock = new ManualClock();
          const failures = script.map((make) => make());
          const { fn, callTimes } = scripted(clock, failures);
          const budget = new RetryBudget({ clock, maxAttempts, maxTimeMs });
          const delays: number[] = [];
          const result = capture(
            retry(fn, {
              clock,
              budget,
              backoff: exponentialBackoff({ random: seededRandom(seed) }),
              onRetry: (e) => delays.push(e.delayMs),
            }),
          );
          await clock.runAll();
          const outcome = await result;

          expect(callTimes.length).toBe(delays.length + 1);
          expect(clock.now()).toBe(delays.reduce((a, b) => a + b, 0));
          expect(callTimes.length).toBeLessThanOrEqual(maxAttempts);
          expect(callTimes.at(-1)).toBeLessThanOrEqual(maxTimeMs);
          for (const delayMs of delays) expect(delayMs).toBeLessThanOrEqual(300_000);

          const firstRefused = failures.findIndex(
            (e) => e instanceof HttpError && e.status === 422,
          );
          const last = callTimes.length - 1;
          if (outcome.ok) {
            expect(last).toBe(failures.length);
          } else if (outcome.error instanceof RetryBudgetError) {
            expect(outcome.error.cause).toBe(failures[last]);
          } else {
            expect(last).toBe(firstRefused);
            expect(outcome.error).toBe(failures[firstRefused]);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});
