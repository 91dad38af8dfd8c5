// A deterministic simulation of the whole engine (issue 7): seeded schedules
// of pushes (reverts A, B, A included), deletes, clock moves, pauses and
// restarts, against a remote that delays, refuses and loses answers. Every
// schedule ends with the faults off and a last engine that sends what is left.
//
// Runs: UPSYNC_SIM_RUNS (default 1000). A failure prints fast-check's seed and
// path; replay exactly that schedule with
//   UPSYNC_SIM_SEED=<seed> UPSYNC_SIM_PATH=<path> npx vitest run packages/core/src/engine/engine-simulation.test.ts
// (add UPSYNC_SIM_TRACE=1 to log every engine event and remote call).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryOutboxStore } from '../outbox/memory-store.ts';
import type { Lane, OutboxScope } from '../outbox/outbox-store.ts';
import { seededRandom } from '../random/random.ts';
import { ManualClock } from '../time/manual-clock.ts';
import { Engine } from './engine.ts';
import { SimulatedRemote, type FaultProfile } from './simulated-remote.ts';

const scope: OutboxScope = { remote: 'memory://remote', project: 'sim', principal: 'tester' };
const KEYS = ['a', 'b', 'c/d', 'e'] as const;
const VALUES = ['A', 'B', 'C'] as const;

type Step =
  | {
      readonly op: 'push';
      readonly key: number;
      readonly value: number;
      readonly knownNew: boolean;
      readonly lane: Lane;
      readonly ordered: boolean;
    }
  | { readonly op: 'delete'; readonly key: number }
  | { readonly op: 'advance'; readonly ms: number }
  | { readonly op: 'pause' }
  | { readonly op: 'resume' }
  | { readonly op: 'restart'; readonly timeoutMs: number };

// Core has no Node types: the environment is read through globalThis.
const env: Readonly<Record<string, string | undefined>> =
  (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env ?? {};

const keyIndex = fc.integer({ min: 0, max: KEYS.length - 1 });
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant('push' as const),
      key: keyIndex,
      value: fc.integer({ min: 0, max: VALUES.length - 1 }),
      knownNew: fc.boolean(),
      lane: fc.constantFrom<Lane>('normal', 'normal', 'normal', 'immediate', 'batch'),
      ordered: fc.integer({ min: 0, max: 4 }).map((n) => n === 0),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('delete' as const), key: keyIndex }) },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('advance' as const),
      ms: fc.integer({ min: 0, max: 15_000 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ op: 'pause' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'resume' as const }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('restart' as const),
      timeoutMs: fc.constantFrom(0, 0, 1000, 5000),
    }),
  },
);

const faultsArb: fc.Arbitrary<FaultProfile> = fc.record({
  failBefore: fc.integer({ min: 0, max: 50 }).map((p) => p / 100),
  failAfter: fc.integer({ min: 0, max: 30 }).map((p) => p / 100),
  delay: fc.integer({ min: 0, max: 50 }).map((p) => p / 100),
  maxDelayMs: fc.integer({ min: 1, max: 10_000 }),
});

const scheduleArb = fc.record({
  seed: fc.integer({ min: 0, max: 0x7fffffff }),
  faults: faultsArb,
  steps: fc.array(stepArb, { minLength: 5, maxLength: 60, size: 'max' }),
});

/** UPSYNC_SIM_TRACE=1 logs every engine event and remote call (with a replayed seed and path). */
const trace = env.UPSYNC_SIM_TRACE === '1';

type Schedule = typeof scheduleArb extends fc.Arbitrary<infer T> ? T : never;

const totals = {
  schedules: 0,
  pushes: 0,
  deletes: 0,
  restarts: 0,
  calls: 0,
  faults: 0,
  lost: 0,
  appliedTwice: 0,
};

/**
 * Moves the clock (to the next timer, or lets promise callbacks run when none
 * is set) until `done()`. Wall time bounds it only so a hang fails the run
 * instead of the whole suite; no outcome depends on the machine's speed.
 */
async function drive(clock: ManualClock, done: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (let turns = 0; !(await done()); turns++) {
    if (turns > 20_000 || Date.now() > deadline) throw new Error('the engine did not settle');
    const next = clock.nextDueMs();
    if (next === undefined) await clock.settle();
    else await clock.advanceTo(next);
  }
}

/** Runs `work` while driving the clock, so waits on the clock inside it can end. */
async function driven<T>(clock: ManualClock, work: Promise<T>): Promise<T> {
  let finished = false;
  const watched = work.finally(() => {
    finished = true;
  });
  // The rejection, if any, is taken by the await below.
  watched.catch(() => undefined);
  await drive(clock, () => finished);
  return watched;
}

async function runSchedule(schedule: Schedule): Promise<void> {
  const clock = new ManualClock();
  const store = new MemoryOutboxStore({ clock });
  const remote = new SimulatedRemote({ clock, random: seededRandom(schedule.seed) });
  const warnings: string[] = [];
  const seqOf = new Map<string, number>();
  // The last outcome of each key's versions, across engines.
  const lastOutcome = new Map<string, { seq: number; outcome: string }>();
  // The last operation on each key: its content, or null for a delete.
  const expected = new Map<string, string | null>();
  let generation = 0;

  const newEngine = async (final: boolean): Promise<Engine> => {
    generation++;
    const engine = new Engine({
      store,
      scope,
      remote,
      clock,
      random: seededRandom(schedule.seed + generation),
      owner: `engine-${generation}`,
      concurrency: 4,
      // The last engine must deliver everything, however much budget is spent.
      ...(final ? { attempts: Infinity, retryTimeMs: Infinity } : {}),
      logger: { warn: (message) => warnings.push(message) },
    });
    engine.on('outcome', (e) => {
      const last = lastOutcome.get(e.key);
      if (!last || last.seq <= e.seq) lastOutcome.set(e.key, { seq: e.seq, outcome: e.outcome });
    });
    if (trace) {
      for (const event of ['accepted', 'coalesced', 'sending', 'retrying', 'outcome'] as const) {
        engine.on(event, (e) => console.log(clock.now(), `engine-${generation}`, event, e));
      }
    }
    await engine.start();
    return engine;
  };

  const stop = async (engine: Engine, timeoutMs: number): Promise<void> => {
    const report = await driven(clock, engine.shutdown({ timeoutMs }));
    // The accounting invariant of shared/DESIGN.md, settled, for every engine.
    engine.stats.checkInvariant({ settled: true });
    expect(report.invariantError).toBeNull();
  };

  remote.faults = schedule.faults;
  let engine = await newEngine(false);
  for (const step of schedule.steps) {
    switch (step.op) {
      case 'push':
      case 'delete': {
        const key = KEYS[step.key] ?? 'a';
        const value = step.op === 'push' ? (VALUES[step.value] ?? 'A') : null;
        // An immediate push's `delivered` is not awaited: it settles when the clock moves.
        const receipt = await engine.push(
          key,
          value,
          step.op === 'push'
            ? { knownNew: step.knownNew, lane: step.lane, ordered: step.ordered }
            : {},
        );
        seqOf.set(receipt.idempotencyKey, receipt.seq);
        expected.set(key, value);
        if (step.op === 'push') totals.pushes++;
        else totals.deletes++;
        break;
      }
      case 'advance':
        await clock.advance(step.ms);
        break;
      case 'pause':
        engine.pause();
        break;
      case 'resume':
        engine.resume();
        break;
      case 'restart':
        await stop(engine, step.timeoutMs);
        engine = await newEngine(false);
        totals.restarts++;
        break;
    }
  }

  // The end: faults off, the last engine on the same store sends what is left.
  await stop(engine, 0);
  remote.faults = null;
  const final = await newEngine(true);
  await driven(clock, final.flush());
  await drive(clock, async () => {
    const status = await final.status();
    return (
      status.pending === 0 &&
      status.inFlight === 0 &&
      status.buffered === 0 &&
      status.retrying === 0
    );
  });
  await stop(final, 0);

  totals.schedules++;
  totals.calls += remote.memory.calls.length;
  totals.faults +=
    remote.injected.failedBefore + remote.injected.failedAfter + remote.injected.delayed;

  if (trace) console.log(remote.memory.calls, remote.memory.applied);
  // Every key's newest version, or its deletion, is on the remote. (A write
  // whose answer was lost, then superseded, used to leave `synced` stale, and a
  // later version equal to it was skipped: the check that found it.)
  const wrong = KEYS.filter((key) => remote.memory.text(key) !== (expected.get(key) ?? undefined));
  totals.lost += wrong.length;
  expect(Object.fromEntries(KEYS.map((key) => [key, remote.memory.text(key) ?? null]))).toEqual(
    Object.fromEntries(KEYS.map((key) => [key, expected.get(key) ?? null])),
  );

  // No version applied twice, and none after a newer version of its key.
  const twice = [...remote.appliedPerIdempotencyKey()].filter(([, count]) => count > 1);
  totals.appliedTwice += twice.length;
  expect(twice).toEqual([]);
  const lastSeq = new Map<string, number>();
  for (const change of remote.memory.applied) {
    const seq = seqOf.get(change.idempotencyKey);
    expect(seq, `an applied change no push made (${change.key})`).toBeDefined();
    const before = lastSeq.get(change.key) ?? -1;
    expect(seq ?? -1, `${change.key}: an older version applied after a newer one`).toBeGreaterThan(
      before,
    );
    lastSeq.set(change.key, seq ?? -1);
  }

  // Nothing left pending, in flight or dead-lettered (only retryable faults were injected).
  expect(await store.counts(scope)).toMatchObject({ pending: 0, inFlight: 0, deadLetters: 0 });
  expect(warnings).toEqual([]);
}

function envInteger(name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const value = Number(raw);
  if (!Number.isSafeInteger(value)) throw new Error(`${name} must be an integer, got ${raw}`);
  return value;
}

describe('Engine simulation', () => {
  const numRuns = envInteger('UPSYNC_SIM_RUNS') ?? 1000;
  const seed = envInteger('UPSYNC_SIM_SEED');
  const path = env.UPSYNC_SIM_PATH;

  it(
    `delivers every key's newest version exactly once over ${numRuns} faulty schedules`,
    async () => {
      await fc.assert(fc.asyncProperty(scheduleArb, runSchedule), {
        numRuns,
        ...(seed === undefined ? {} : { seed }),
        ...(path === undefined || path === '' ? {} : { path }),
      });
      console.log(
        `simulation: ${totals.schedules} schedules, ${totals.pushes} pushes, ${totals.deletes} deletes, ` +
          `${totals.restarts} restarts, ${totals.calls} calls, ${totals.faults} faults injected, ${totals.lost} lost, ` +
          `${totals.appliedTwice} applied twice`,
      );
      expect(totals.pushes).toBeGreaterThan(0);
    },
    // Generous: UPSYNC_SIM_RUNS may ask for many more schedules.
    Math.max(120_000, numRuns * 600),
  );
});
