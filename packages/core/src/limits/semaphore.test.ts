import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Semaphore, type SemaphoreRelease } from './semaphore.ts';
import { ManualClock } from '../time/manual-clock.ts';
import { ClosedError } from '../errors/upsync-error.ts';

interface Tracked {
  release?: SemaphoreRelease;
  error?: unknown;
}

function track(promise: Promise<SemaphoreRelease>): Tracked {
  const result: Tracked = {};
  promise.then(
    (release) => (result.release = release),
    (error: unknown) => (result.error = error),
  );
  return result;
}

// Promise callbacks need a few turns; the clock's settle() gives them without real time.
const settle = () => new ManualClock().settle();

describe('Semaphore', () => {
  it('rejects bad limits with a TypeError that shows the value', () => {
    expect(() => new Semaphore({ limit: 0 })).toThrow(/limit must be an integer >= 1, got 0/);
    expect(() => new Semaphore({ limit: 2.5 })).toThrow(/got 2.5/);
    const semaphore = new Semaphore({ limit: 1 });
    expect(() => semaphore.setLimit(Number.POSITIVE_INFINITY)).toThrow(/got Infinity/);
    expect(semaphore.limit).toBe(1);
  });

  it('admits up to the limit, then queues in FIFO order', async () => {
    const semaphore = new Semaphore({ limit: 2 });
    const all = [0, 1, 2, 3].map(() => track(semaphore.acquire()));
    await settle();
    expect(all.map((t) => t.release !== undefined)).toEqual([true, true, false, false]);
    expect(semaphore.inUse).toBe(2);
    expect(semaphore.waiting).toBe(2);
    all[1]!.release!();
    await settle();
    expect(all.map((t) => t.release !== undefined)).toEqual([true, true, true, false]);
    expect(semaphore.inUse).toBe(2);
  });

  it('release is idempotent', async () => {
    const semaphore = new Semaphore({ limit: 1 });
    const release = await semaphore.acquire();
    const waiter = track(semaphore.acquire());
    const other = track(semaphore.acquire());
    release();
    release();
    await settle();
    expect(waiter.release).toBeDefined();
    expect(other.release).toBeUndefined();
    expect(semaphore.inUse).toBe(1);
  });

  it('a new caller does not overtake waiters when a permit frees up', async () => {
    const semaphore = new Semaphore({ limit: 1 });
    const release = await semaphore.acquire();
    const first = track(semaphore.acquire());
    release();
    const second = track(semaphore.acquire());
    await settle();
    expect(first.release).toBeDefined();
    expect(second.release).toBeUndefined();
  });

  it('an aborted acquire rejects with the reason and leaves the queue', async () => {
    const semaphore = new Semaphore({ limit: 1 });
    const release = await semaphore.acquire();
    const controller = new AbortController();
    const aborted = track(semaphore.acquire(controller.signal));
    const next = track(semaphore.acquire());
    const reason = new Error('give up');
    controller.abort(reason);
    await settle();
    expect(aborted.error).toBe(reason);
    expect(semaphore.waiting).toBe(1);
    release();
    await settle();
    expect(next.release).toBeDefined();
    expect(semaphore.inUse).toBe(1);
    const already = AbortSignal.abort(new Error('early'));
    await expect(semaphore.acquire(already)).rejects.toThrow('early');
  });

  it('an abort after the grant changes nothing', async () => {
    const semaphore = new Semaphore({ limit: 1 });
    const controller = new AbortController();
    const release = await semaphore.acquire(controller.signal);
    controller.abort();
    expect(semaphore.inUse).toBe(1);
    release();
    expect(semaphore.inUse).toBe(0);
  });

  it('growing the limit admits waiters at once', async () => {
    const semaphore = new Semaphore({ limit: 1 });
    const all = [0, 1, 2, 3].map(() => track(semaphore.acquire()));
    semaphore.setLimit(3);
    await settle();
    expect(all.map((t) => t.release !== undefined)).toEqual([true, true, true, false]);
  });

  it('shrinking lets holders finish and admits nobody until inUse is below the new limit', async () => {
    const semaphore = new Semaphore({ limit: 3 });
    const holders = await Promise.all([0, 1, 2].map(() => semaphore.acquire()));
    const waiter = track(semaphore.acquire());
    semaphore.setLimit(1);
    expect(semaphore.inUse).toBe(3);
    holders[0]!();
    await settle();
    expect(waiter.release).toBeUndefined();
    holders[1]!();
    await settle();
    expect(waiter.release).toBeUndefined();
    expect(semaphore.inUse).toBe(1);
    holders[2]!();
    await settle();
    expect(waiter.release).toBeDefined();
    expect(semaphore.inUse).toBe(1);
  });

  it('run() holds a permit for the call and releases it however the call ends', async () => {
    const semaphore = new Semaphore({ limit: 1 });
    const controller = new AbortController();
    let seenSignal: AbortSignal | undefined;
    await expect(
      semaphore.run((signal) => {
        seenSignal = signal;
        expect(semaphore.inUse).toBe(1);
        return 42;
      }, controller.signal),
    ).resolves.toBe(42);
    expect(seenSignal).toBe(controller.signal);
    expect(semaphore.inUse).toBe(0);
    await expect(semaphore.run(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(semaphore.inUse).toBe(0);
  });

  it('close() rejects waiters and later acquires, and holders can still release', async () => {
    const semaphore = new Semaphore({ limit: 1 });
    const release = await semaphore.acquire();
    const waiter = semaphore.acquire();
    await semaphore[Symbol.asyncDispose]();
    await expect(waiter).rejects.toBeInstanceOf(ClosedError);
    await expect(semaphore.acquire()).rejects.toBeInstanceOf(ClosedError);
    expect(semaphore.waiting).toBe(0);
    release();
    expect(semaphore.inUse).toBe(0);
  });

  it('property: inUse stays within the limit, grants are FIFO, every acquire ends', async () => {
    type Command =
      | { kind: 'acquire'; abortable: boolean }
      | { kind: 'release'; pick: number }
      | { kind: 'abort'; pick: number }
      | { kind: 'setLimit'; limit: number };
    const command: fc.Arbitrary<Command> = fc.oneof(
      {
        weight: 4,
        arbitrary: fc.record({ kind: fc.constant('acquire' as const), abortable: fc.boolean() }),
      },
      {
        weight: 3,
        arbitrary: fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }),
      },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('abort' as const), pick: fc.nat() }) },
      {
        weight: 1,
        arbitrary: fc.record({
          kind: fc.constant('setLimit' as const),
          limit: fc.integer({ min: 1, max: 6 }),
        }),
      },
    );

    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 6 }),
        fc.array(command, { maxLength: 80, size: 'max' }),
        async (limit, commands) => {
          const semaphore = new Semaphore({ limit });
          interface Call {
            id: number;
            controller: AbortController | undefined;
            release?: SemaphoreRelease;
            released: boolean;
            aborted: boolean;
          }
          const calls: Call[] = [];
          const grantOrder: number[] = [];
          let overAdmitted = false;
          const check = () => {
            const held = calls.filter((c) => c.release && !c.released).length;
            expect(semaphore.inUse).toBe(held);
            expect(semaphore.waiting).toBe(calls.filter((c) => !c.release && !c.aborted).length);
            // Work-conserving: nobody waits while a permit is free.
            if (semaphore.inUse < semaphore.limit) expect(semaphore.waiting).toBe(0);
          };

          for (const c of commands) {
            if (c.kind === 'acquire') {
              const call: Call = {
                id: calls.length,
                controller: c.abortable ? new AbortController() : undefined,
                released: false,
                aborted: false,
              };
              calls.push(call);
              semaphore.acquire(call.controller?.signal).then(
                (release) => {
                  // Recorded, not asserted: a throw here would only be an unhandled rejection.
                  if (semaphore.inUse > semaphore.limit) overAdmitted = true;
                  call.release = release;
                  grantOrder.push(call.id);
                },
                () => (call.aborted = true),
              );
            } else if (c.kind === 'release') {
              const held = calls.filter((x) => x.release && !x.released);
              const victim = held[c.pick % Math.max(1, held.length)];
              if (victim) {
                const inUseBefore = semaphore.inUse;
                victim.release!();
                victim.release!(); // idempotent
                victim.released = true;
                // Admissions after a release never push inUse past the limit.
                expect(semaphore.inUse).toBeLessThanOrEqual(
                  Math.max(inUseBefore - 1, semaphore.limit),
                );
              }
            } else if (c.kind === 'abort') {
              const abortable = calls.filter((x) => x.controller && !x.release && !x.aborted);
              abortable[c.pick % Math.max(1, abortable.length)]?.controller?.abort(
                new Error('stop'),
              );
            } else {
              const inUseBefore = semaphore.inUse;
              semaphore.setLimit(c.limit);
              // Growing admits up to the new limit; shrinking takes nothing back.
              expect(semaphore.inUse).toBeLessThanOrEqual(Math.max(inUseBefore, c.limit));
            }
            await settle();
            check();
            expect(overAdmitted).toBe(false);
          }

          // Release everything; every acquire ends granted or aborted.
          for (;;) {
            const held = calls.filter((x) => x.release && !x.released);
            if (held.length === 0) break;
            for (const x of held) {
              x.release!();
              x.released = true;
            }
            await settle();
            check();
          }
          for (const x of calls) expect(Boolean(x.release) !== x.aborted).toBe(true);
          expect(grantOrder).toEqual([...grantOrder].sort((a, b) => a - b));
          expect(semaphore.inUse).toBe(0);
        },
      ),
      { numRuns: 200 },
    );
  });
});
