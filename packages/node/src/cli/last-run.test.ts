import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Stats, type EngineReport, type EngineStatus } from '@upsync/core';
import { ManualClock } from '@upsync/core/testing';
import { afterAll, describe, expect, it } from 'vitest';
import {
  LAST_RUN_FILE,
  LastRunFile,
  readLastRun,
  runState,
  writeJsonAtomic,
  type LastRunRecord,
} from './last-run.ts';

const root = mkdtempSync(join(tmpdir(), 'upsync-last-run-'));
let folders = 0;
afterAll(() => rmSync(root, { recursive: true, force: true }));
function folder(): string {
  const dir = join(root, `s${++folders}`);
  mkdirSync(dir);
  return dir;
}

const T0 = Date.UTC(2026, 0, 2, 3, 4, 5);
const identity = { command: 'sync', remote: 'http://r', project: 'p', principal: 'alice' };

function status(overrides: Partial<EngineStatus> = {}): EngineStatus {
  return {
    enabled: true,
    paused: null,
    pending: 7,
    inFlight: 2,
    buffered: 0,
    deadLetters: 1,
    droppedDeadLetters: 0,
    lastSyncAtMs: null,
    consecutiveFailures: 0,
    breaker: 'closed',
    retrying: 3,
    ...overrides,
  };
}

function report(
  outcomes: Partial<Record<'created' | 'errored' | 'timedOut', number>>,
): EngineReport {
  const snapshot = new Stats().snapshot();
  const created = outcomes.created ?? 0;
  const errored = outcomes.errored ?? 0;
  const timedOut = outcomes.timedOut ?? 0;
  return {
    ...snapshot,
    created,
    errored,
    timedOut,
    deadLettered: errored,
    attempted: created + errored + timedOut,
    checked: true,
    invariantError: null,
    errors: [],
    paused: null,
    listing: 'loaded',
  };
}

const read = (dir: string): LastRunRecord =>
  JSON.parse(readFileSync(join(dir, LAST_RUN_FILE), 'utf8')) as LastRunRecord;

describe('LastRunFile', () => {
  it('writes running, refreshes from the status, then finishes with the outcome', async () => {
    const dir = folder();
    const clock = new ManualClock({ startMs: T0 });
    const file = new LastRunFile({ stateDir: dir, identity, clock });
    file.start();
    expect(read(dir)).toEqual({
      version: 1,
      state: 'running',
      ...identity,
      pid: process.pid,
      host: hostname(),
      startedAt: '2026-01-02T03:04:05.000Z',
      updatedAt: '2026-01-02T03:04:05.000Z',
      finishedAt: null,
      pending: null,
      inFlight: null,
      retrying: null,
      deadLetters: null,
      breaker: null,
      paused: null,
      outcome: null,
      allArrived: null,
    });
    await clock.advance(5_000);
    file.refresh(status({ breaker: 'open' }));
    expect(read(dir)).toMatchObject({
      state: 'running',
      updatedAt: '2026-01-02T03:04:10.000Z',
      pending: 7,
      inFlight: 2,
      retrying: 3,
      deadLetters: 1,
      breaker: 'open',
    });
    await clock.advance(1_000);
    file.finish(
      report({ created: 4, errored: 1 }),
      status({ pending: 0, inFlight: 0, retrying: 0 }),
    );
    const finished = read(dir);
    expect(finished).toMatchObject({
      state: 'finished',
      startedAt: '2026-01-02T03:04:05.000Z',
      finishedAt: '2026-01-02T03:04:11.000Z',
      pending: 0,
      breaker: 'closed',
      allArrived: false,
      outcome: { attempted: 5, created: 4, errored: 1, deadLettered: 1, timedOut: 0 },
    });
    // A refresh that lands after the end does not turn the record back to running.
    file.refresh(status());
    expect(read(dir)).toEqual(finished);
    // Only the record: the temporary file was renamed into place.
    expect(readdirSync(dir)).toEqual([LAST_RUN_FILE]);
  });

  it('says everything arrived only when nothing errored, timed out or paused', () => {
    const dir = folder();
    const file = new LastRunFile({
      stateDir: dir,
      identity,
      clock: new ManualClock({ startMs: T0 }),
    });
    file.finish(report({ created: 3 }), null);
    expect(read(dir)).toMatchObject({ allArrived: true, pending: null });
    const paused = {
      reason: 'auth' as const,
      status: 401,
      message: 'the remote refused the token',
    };
    file.finish({ ...report({}), paused }, null);
    expect(read(dir)).toMatchObject({ allArrived: false, paused: paused.message });
  });

  it('reports a write that fails instead of throwing', () => {
    const errors: unknown[] = [];
    const file = new LastRunFile({
      stateDir: join(folder(), 'missing', 'deeper'),
      identity,
      onError: (error) => errors.push(error),
    });
    file.start();
    expect(errors).toHaveLength(1);
  });
});

describe('readLastRun and runState', () => {
  it('reads a record back, and tells running, interrupted, finished and elsewhere apart', () => {
    const dir = folder();
    expect(readLastRun(dir)).toEqual({ record: null, problem: null });
    new LastRunFile({ stateDir: dir, identity, clock: new ManualClock({ startMs: T0 }) }).start();
    const { record } = readLastRun(dir);
    expect(record).toMatchObject({ state: 'running', pid: process.pid });
    expect(runState(record!, () => true)).toBe('running');
    expect(runState(record!, () => false)).toBe('interrupted');
    expect(runState({ ...record!, host: `${hostname()}-other` }, () => true)).toBe('elsewhere');
    expect(runState({ ...record!, state: 'finished' }, () => true)).toBe('finished');
    // The real check: this process is alive.
    expect(runState(record!)).toBe('running');
  });

  it('ignores a damaged record with a note naming it', () => {
    const dir = folder();
    writeFileSync(join(dir, LAST_RUN_FILE), '{"version":1,"state":"running"');
    expect(readLastRun(dir)).toEqual({
      record: null,
      problem: `${join(dir, LAST_RUN_FILE)} is not a last-run record; it was ignored`,
    });
    writeJsonAtomic(join(dir, LAST_RUN_FILE), { version: 1, state: 'running', pid: 'x' });
    expect(readLastRun(dir).record).toBeNull();
  });
});
