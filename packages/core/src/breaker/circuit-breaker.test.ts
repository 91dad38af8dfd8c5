import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  CircuitBreaker,
  type BreakerPermit,
  type BreakerState,
  type BreakerStateName,
  type BreakerTransition,
  type CircuitBreakerOptions,
} from './circuit-breaker.ts';
import { ManualClock } from '../time/manual-clock.ts';
import { CircuitOpenError, HttpError, NetworkError } from '../errors/upsync-error.ts';

function make(options: Omit<CircuitBreakerOptions, 'clock'> = {}, clock = new ManualClock()) {
  const breaker = new CircuitBreaker({ ...options, clock });
  const transitions: BreakerTransition[] = [];
  breaker.on('state', (t) => transitions.push(t));
  return { breaker, clock, transitions };
}

function refusal(breaker: CircuitBreaker): CircuitOpenError {
  try {
    breaker.acquire();
  } catch (error) {
    if (error instanceof CircuitOpenError) return error;
    throw error;
  }
  throw new Error('expected the breaker to refuse');
}

function failTimes(breaker: CircuitBreaker, n: number): void {
  for (let i = 0; i < n; i++) breaker.acquire().failure();
}

describe('CircuitBreaker', () => {
  it('rejects bad options with a TypeError that shows the value', () => {
    expect(() => make({ failureThreshold: 0 })).toThrow(
      /failureThreshold must be an integer >= 1, got 0/,
    );
    expect(() => make({ openMs: -5 })).toThrow(/openMs must be a finite number > 0, got -5/);
    expect(() => make({ openMs: 10, maxOpenMs: 5 })).toThrow(
      /maxOpenMs must be >= openMs \(10\), got 5/,
    );
    expect(() =>
      make({ restore: { state: 'ajar', consecutiveFailures: 0 } as unknown as BreakerState }),
    ).toThrow(/restore.state must be one of closed, open, half-open, got "ajar"/);
    expect(() =>
      make({
        restore: {
          state: 'open',
          consecutiveFailures: 5,
          openedAtMs: null,
          openMs: 10,
          retryAtMs: null,
        },
      }),
    ).toThrow(/restore.openedAtMs must be a finite number, got null/);
  });

  it('opens after failureThreshold consecutive failures (default 5); a success resets the count', () => {
    const { breaker, clock, transitions } = make();
    failTimes(breaker, 4);
    breaker.acquire().success();
    failTimes(breaker, 4);
    expect(breaker.state).toBe('closed');
    breaker.acquire().failure();
    expect(breaker.state).toBe('open');
    expect(transitions).toEqual([{ from: 'closed', to: 'open', atMs: 0, retryAtMs: 5000 }]);
    const error = refusal(breaker);
    expect(error.retryAtMs).toBe(5000);
    expect(error.code).toBe('ERR_CIRCUIT_OPEN');
    expect(clock.pendingTimers).toBe(0);
  });

  it('goes half-open when the period ends and lets exactly one probe through', async () => {
    const { breaker, clock, transitions } = make({ failureThreshold: 1, openMs: 1000 });
    breaker.acquire().failure();
    await clock.advance(999);
    expect(breaker.state).toBe('open');
    await clock.advance(1);
    expect(transitions).toHaveLength(1); // noticed only when asked
    const probe = breaker.acquire();
    expect(probe.probe).toBe(true);
    expect(transitions.at(-1)).toMatchObject({ from: 'open', to: 'half-open', atMs: 1000 });
    const refused = refusal(breaker);
    expect(refused.retryAtMs).toBeGreaterThan(clock.now());
    expect(refusal(breaker)).toBeInstanceOf(CircuitOpenError);
    probe.success();
    expect(breaker.state).toBe('closed');
    expect(breaker.acquire().probe).toBe(false);
  });

  it('a failed probe reopens with a doubled period, capped at maxOpenMs; closing resets it', async () => {
    const { breaker, clock, transitions } = make({
      failureThreshold: 1,
      openMs: 100,
      maxOpenMs: 500,
    });
    breaker.acquire().failure();
    const periods: number[] = [];
    for (let i = 0; i < 5; i++) {
      await clock.advanceTo(breaker.snapshot().retryAtMs!);
      breaker.acquire().failure();
      const opened = transitions.at(-1)!;
      periods.push(opened.retryAtMs! - opened.atMs);
    }
    expect(periods).toEqual([200, 400, 500, 500, 500]);
    await clock.advance(500);
    breaker.acquire().success();
    breaker.acquire().failure();
    const reopened = transitions.at(-1)!;
    expect(reopened.retryAtMs! - reopened.atMs).toBe(100);
  });

  it('a cancelled probe frees the slot for the next caller', async () => {
    const { breaker, clock } = make({ failureThreshold: 1, openMs: 10 });
    breaker.acquire().failure();
    await clock.advance(10);
    const probe = breaker.acquire();
    probe.cancel();
    expect(breaker.state).toBe('half-open');
    const next = breaker.acquire();
    expect(next.probe).toBe(true);
    next.success();
    expect(breaker.state).toBe('closed');
  });

  it('permits from an earlier state report into the void, and each permit reports once', async () => {
    const { breaker, clock, transitions } = make({ failureThreshold: 2, openMs: 10 });
    const slow: BreakerPermit[] = [0, 1, 2, 3].map(() => breaker.acquire());
    slow[0]!.failure();
    slow[0]!.failure(); // a second report of the same permit is ignored
    expect(breaker.state).toBe('closed');
    slow[1]!.failure();
    expect(breaker.state).toBe('open');
    await clock.advance(10);
    const probe = breaker.acquire();
    slow[2]!.success(); // started while closed: must not close a half-open breaker
    expect(breaker.state).toBe('half-open');
    probe.success();
    slow[3]!.failure(); // from the previous closed period: does not count now
    breaker.acquire().failure();
    expect(breaker.state).toBe('closed');
    expect(transitions.map((t) => t.to)).toEqual(['open', 'half-open', 'closed']);
  });

  describe('execute', () => {
    it('records success and failure, and refuses without calling fn when open', async () => {
      const { breaker } = make({ failureThreshold: 2 });
      await expect(breaker.execute(() => 7)).resolves.toBe(7);
      const down = new NetworkError('reset');
      await expect(breaker.execute(() => Promise.reject(down))).rejects.toBe(down);
      await expect(
        breaker.execute(() => {
          throw new Error('sync throw counts too');
        }),
      ).rejects.toThrow('sync throw');
      expect(breaker.state).toBe('open');
      let called = false;
      await expect(breaker.execute(() => (called = true))).rejects.toBeInstanceOf(CircuitOpenError);
      expect(called).toBe(false);
    });

    it('a non-retryable answer means the host is up: it counts as a success', async () => {
      const { breaker } = make({ failureThreshold: 2 });
      await expect(breaker.execute(() => Promise.reject(new NetworkError('x')))).rejects.toThrow();
      await expect(
        breaker.execute(() => Promise.reject(new HttpError(400, 'bad'))),
      ).rejects.toThrow();
      await expect(breaker.execute(() => Promise.reject(new NetworkError('y')))).rejects.toThrow();
      expect(breaker.state).toBe('closed');
      expect(breaker.snapshot().consecutiveFailures).toBe(1);
    });

    it('isFailure decides what counts against the remote', async () => {
      const down = new Error('down');
      const { breaker } = make({ failureThreshold: 1, isFailure: (e) => e === down });
      await expect(
        breaker.execute(() => Promise.reject(new NetworkError('other'))),
      ).rejects.toThrow();
      expect(breaker.state).toBe('closed');
      await expect(breaker.execute(() => Promise.reject(down))).rejects.toBe(down);
      expect(breaker.state).toBe('open');
    });

    it('a throwing isFailure counts the call as a failure instead of wedging the probe', async () => {
      const { breaker, clock } = make({
        failureThreshold: 1,
        openMs: 10,
        isFailure: () => {
          throw new Error('classifier bug');
        },
      });
      await expect(breaker.execute(() => Promise.reject(new Error('x')))).rejects.toThrow('x');
      expect(breaker.state).toBe('open');
      await clock.advance(10);
      await expect(breaker.execute(() => Promise.reject(new Error('y')))).rejects.toThrow('y');
      expect(breaker.snapshot()).toMatchObject({ state: 'open', openMs: 20 });
    });

    it('an abort rejects with the reason at once and frees the probe without a verdict', async () => {
      const { breaker, clock } = make({ failureThreshold: 1, openMs: 10 });
      breaker.acquire().failure();
      await clock.advance(10);
      const controller = new AbortController();
      let seen: AbortSignal | undefined;
      const hung = breaker.execute((signal) => {
        seen = signal;
        return new Promise<never>(() => {});
      }, controller.signal);
      await clock.settle();
      expect(seen).toBe(controller.signal);
      const reason = new Error('user stop');
      controller.abort(reason);
      await expect(hung).rejects.toBe(reason);
      expect(breaker.state).toBe('half-open');
      expect(breaker.acquire().probe).toBe(true);
      await expect(breaker.execute(() => 1, AbortSignal.abort(reason))).rejects.toBe(reason);
    });
  });

  describe('snapshot and restore', () => {
    it('round-trips through JSON', async () => {
      const { breaker, clock } = make({ failureThreshold: 1, openMs: 100 });
      breaker.acquire().failure();
      await clock.advance(100);
      breaker.acquire().failure(); // reopened for 200 ms at t=100
      const saved = JSON.parse(JSON.stringify(breaker.snapshot())) as BreakerState;
      expect(saved).toEqual({
        state: 'open',
        consecutiveFailures: 2,
        openedAtMs: 100,
        openMs: 200,
        retryAtMs: 300,
      });
      const restored = new CircuitBreaker({
        failureThreshold: 1,
        openMs: 100,
        clock,
        restore: saved,
      });
      expect(restored.snapshot()).toEqual(saved);
      expect(refusal(restored).retryAtMs).toBe(300);
      await clock.advance(200);
      // The restored period keeps doubling.
      restored.acquire().failure();
      expect(restored.snapshot()).toMatchObject({ openedAtMs: 300, openMs: 400 });
    });

    it('an open state whose retry time has passed comes back half-open', () => {
      const clock = new ManualClock({ startMs: 10_000 });
      const breaker = new CircuitBreaker({
        clock,
        restore: {
          state: 'open',
          consecutiveFailures: 5,
          openedAtMs: 1000,
          openMs: 5000,
          retryAtMs: 6000,
        },
      });
      const transitions: BreakerTransition[] = [];
      breaker.on('state', (t) => transitions.push(t));
      expect(breaker.state).toBe('half-open');
      expect(transitions).toEqual([
        { from: 'open', to: 'half-open', atMs: 10_000, retryAtMs: 6000 },
      ]);
      expect(breaker.acquire().probe).toBe(true);
    });

    it('restored half-open has no probe out; closed keeps its failures below the threshold', () => {
      const clock = new ManualClock();
      const halfOpen = new CircuitBreaker({
        clock,
        restore: {
          state: 'half-open',
          consecutiveFailures: 5,
          openedAtMs: null,
          openMs: 5000,
          retryAtMs: null,
        },
      });
      expect(halfOpen.acquire().probe).toBe(true);
      const closed = new CircuitBreaker({
        clock,
        failureThreshold: 3,
        restore: {
          state: 'closed',
          consecutiveFailures: 9,
          openedAtMs: null,
          openMs: 5000,
          retryAtMs: null,
        },
      });
      expect(closed.state).toBe('closed');
      closed.acquire().failure();
      expect(closed.state).toBe('open');
    });

    it('clamps a saved period to maxOpenMs and an opening time in the future to now', () => {
      const clock = new ManualClock({ startMs: 1000 });
      const breaker = new CircuitBreaker({
        clock,
        maxOpenMs: 60_000,
        restore: {
          state: 'open',
          consecutiveFailures: 9,
          openedAtMs: 900_000,
          openMs: 999_999,
          retryAtMs: 0,
        },
      });
      expect(breaker.snapshot()).toMatchObject({
        openedAtMs: 1000,
        openMs: 60_000,
        retryAtMs: 61_000,
      });
    });
  });

  describe('property: random command sequences', () => {
    type Command =
      | { kind: 'acquire' }
      | { kind: 'success' | 'failure' | 'cancel'; pick: number }
      | { kind: 'advance'; fraction: number }
      | { kind: 'restart' };
    const command: fc.Arbitrary<Command> = fc.oneof(
      { weight: 4, arbitrary: fc.constant({ kind: 'acquire' as const }) },
      {
        weight: 2,
        arbitrary: fc.record({ kind: fc.constant('success' as const), pick: fc.nat() }),
      },
      {
        weight: 4,
        arbitrary: fc.record({ kind: fc.constant('failure' as const), pick: fc.nat() }),
      },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('cancel' as const), pick: fc.nat() }) },
      {
        weight: 3,
        arbitrary: fc.record({
          kind: fc.constant('advance' as const),
          fraction: fc.double({ min: 0, max: 1.5, noNaN: true }),
        }),
      },
      { weight: 1, arbitrary: fc.constant({ kind: 'restart' as const }) },
    );
    const legal = new Set(['closed>open', 'open>half-open', 'half-open>closed', 'half-open>open']);

    it('makes only legal transitions, one probe at a time, open periods within bounds', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 1, max: 5 }),
          fc.integer({ min: 1, max: 1000 }),
          fc.integer({ min: 1, max: 64 }),
          fc.array(command, { minLength: 1, maxLength: 150, size: 'max' }),
          async (failureThreshold, openMs, maxFactor, commands) => {
            const maxOpenMs = openMs * maxFactor;
            const clock = new ManualClock();
            const options = { failureThreshold, openMs, maxOpenMs, clock };
            let current: BreakerStateName = 'closed';
            let lastPeriodMs = 0;
            let retryAtMs: number | null = null;
            // Counts transitions: a permit is live only if none happened since it was taken.
            let generation = 0;
            let consecutive = 0; // live failures since the last success or transition
            // The emitter reports a throwing listener instead of rethrowing, so the
            // listener only collects and the checks run after each command.
            const pending: BreakerTransition[] = [];
            const listen = (b: CircuitBreaker) => b.on('state', (t) => pending.push(t));
            const checkTransitions = () => {
              for (const t of pending.splice(0)) {
                expect(t.from).toBe(current);
                expect(legal.has(`${t.from}>${t.to}`)).toBe(true);
                if (t.to === 'open') {
                  const periodMs = t.retryAtMs! - t.atMs;
                  expect(periodMs).toBeGreaterThanOrEqual(openMs);
                  expect(periodMs).toBeLessThanOrEqual(maxOpenMs);
                  // Doubling on each consecutive reopen, from openMs after a close.
                  expect(periodMs).toBe(
                    t.from === 'closed' ? openMs : Math.min(lastPeriodMs * 2, maxOpenMs),
                  );
                  lastPeriodMs = periodMs;
                  retryAtMs = t.retryAtMs;
                }
                if (t.to === 'half-open') expect(t.atMs).toBeGreaterThanOrEqual(retryAtMs!);
                current = t.to;
                generation++;
                consecutive = 0;
              }
            };
            let breaker = new CircuitBreaker(options);
            listen(breaker);
            let permits: { permit: BreakerPermit; settled: boolean; generation: number }[] = [];

            for (const c of commands) {
              if (c.kind === 'acquire') {
                const before = breaker.state;
                checkTransitions();
                const openProbes = permits.filter((p) => p.permit.probe && !p.settled).length;
                try {
                  const permit = breaker.acquire();
                  expect(before).not.toBe('open');
                  expect(permit.probe).toBe(before === 'half-open');
                  permits.push({ permit, settled: false, generation });
                } catch (error) {
                  expect(error).toBeInstanceOf(CircuitOpenError);
                  expect((error as CircuitOpenError).retryAtMs).toBeGreaterThan(clock.now());
                  expect(before === 'open' || (before === 'half-open' && openProbes === 1)).toBe(
                    true,
                  );
                  if (before === 'open')
                    expect((error as CircuitOpenError).retryAtMs).toBe(retryAtMs);
                }
              } else if (c.kind === 'advance') {
                await clock.advance(Math.round(c.fraction * (lastPeriodMs || openMs)));
              } else if (c.kind === 'restart') {
                const saved = JSON.parse(JSON.stringify(breaker.snapshot())) as BreakerState;
                breaker = new CircuitBreaker({ ...options, restore: saved });
                listen(breaker);
                expect(breaker.snapshot()).toEqual(saved);
                permits = []; // their process died with them
              } else {
                const open = permits.filter((p) => !p.settled);
                const chosen = open[c.pick % Math.max(1, open.length)];
                if (chosen) {
                  const stateBefore = breaker.state;
                  checkTransitions();
                  const live = chosen.generation === generation;
                  if (live && stateBefore === 'closed' && c.kind !== 'cancel') {
                    consecutive = c.kind === 'failure' ? consecutive + 1 : 0;
                  }
                  chosen.permit[c.kind]();
                  chosen.settled = true;
                  checkTransitions();
                  // A stale permit or a cancel changes nothing; a live probe decides.
                  if (!live || c.kind === 'cancel') expect(breaker.state).toBe(stateBefore);
                  else if (chosen.permit.probe) {
                    expect(breaker.state).toBe(c.kind === 'success' ? 'closed' : 'open');
                  }
                }
              }
              // Never more than one probe out.
              expect(
                permits.filter((p) => p.permit.probe && !p.settled).length,
              ).toBeLessThanOrEqual(1);
              const state = breaker.state;
              checkTransitions();
              expect(state).toBe(current);
              // It opens at the threshold, not before.
              if (state === 'closed') expect(consecutive).toBeLessThan(failureThreshold);
              if (state === 'open') expect(clock.now()).toBeLessThan(retryAtMs!);
            }
          },
        ),
        { numRuns: 300 },
      );
    });
  });
});
