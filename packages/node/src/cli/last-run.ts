// `<state>/last-run.json`: what the last (or the running) sender did, for
// `upsync status`, which reads it without touching the outbox or the lock.
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import {
  exitCode,
  systemClock,
  type Clock,
  type EngineReport,
  type EngineStatus,
} from '@upsync/core';

export const LAST_RUN_FILE = 'last-run.json';

/** How often a running sender refreshes its record. */
export const LAST_RUN_REFRESH_MS = 5_000;

export type BreakerState = EngineStatus['breaker'];

export interface LastRunOutcome {
  readonly attempted: number;
  readonly created: number;
  readonly updated: number;
  readonly deleted: number;
  readonly skipped: number;
  readonly errored: number;
  readonly deadLettered: number;
  readonly timedOut: number;
  readonly coalesced: number;
}

/** Who ran. Nothing secret: this is written to disk in plain text. */
export interface LastRunIdentity {
  /** `sync`, `run`, `dlq retry`. */
  readonly command: string;
  readonly remote: string;
  readonly project: string;
  readonly principal: string;
}

export interface LastRunRecord extends LastRunIdentity {
  readonly version: 1;
  readonly state: 'running' | 'finished';
  readonly pid: number;
  readonly host: string;
  /** ISO 8601 (UTC). */
  readonly startedAt: string;
  readonly updatedAt: string;
  readonly finishedAt: string | null;
  /** From the engine's status at the last refresh; null before the first. */
  readonly pending: number | null;
  readonly inFlight: number | null;
  readonly retrying: number | null;
  readonly deadLetters: number | null;
  readonly breaker: BreakerState | null;
  /** Why sending was paused (a refused token, a missing project), one line. */
  readonly paused: string | null;
  /** Set when finished. */
  readonly outcome: LastRunOutcome | null;
  /** Set when finished: every version it took up arrived (or was already there). */
  readonly allArrived: boolean | null;
}

/**
 * Writes `value` as JSON to `path` through a temporary file and a rename, so
 * a reader sees the old record or the new one, never half of one.
 */
export function writeJsonAtomic(path: string, value: unknown): void {
  const temp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(temp, `${JSON.stringify(value, null, 2)}\n`);
    renameSync(temp, path);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
}

function outcomeOf(report: EngineReport): LastRunOutcome {
  return {
    attempted: report.attempted,
    created: report.created,
    updated: report.updated,
    deleted: report.deleted,
    skipped: report.skipped,
    errored: report.errored,
    deadLettered: report.deadLettered,
    timedOut: report.timedOut,
    coalesced: report.coalesced,
  };
}

export interface LastRunFileOptions {
  readonly stateDir: string;
  readonly identity: LastRunIdentity;
  /** Default: the system clock. */
  readonly clock?: Clock;
  /** A write failed (the record is advisory: the command goes on). */
  readonly onError?: (error: unknown) => void;
}

/**
 * The sender's side of `last-run.json`. Only the process that holds the state
 * folder's lock makes one, so records never interleave.
 */
export class LastRunFile {
  readonly path: string;
  readonly #clock: Clock;
  readonly #onError: (error: unknown) => void;
  #record: LastRunRecord;
  #finished = false;

  constructor(options: LastRunFileOptions) {
    this.path = join(options.stateDir, LAST_RUN_FILE);
    this.#clock = options.clock ?? systemClock;
    this.#onError = options.onError ?? (() => {});
    const { command, remote, project, principal } = options.identity;
    const now = new Date(this.#clock.now()).toISOString();
    this.#record = {
      version: 1,
      state: 'running',
      command,
      remote,
      project,
      principal,
      pid: process.pid,
      host: hostname(),
      startedAt: now,
      updatedAt: now,
      finishedAt: null,
      pending: null,
      inFlight: null,
      retrying: null,
      deadLetters: null,
      breaker: null,
      paused: null,
      outcome: null,
      allArrived: null,
    };
  }

  get record(): LastRunRecord {
    return this.#record;
  }

  /** Writes the running record. */
  start(): void {
    this.#write();
  }

  /** Refreshes the running record from the engine's status; ignored once finished. */
  refresh(status: EngineStatus): void {
    if (this.#finished) return;
    this.#record = { ...this.#record, ...this.#fromStatus(status) };
    this.#write();
  }

  /** The final record: the report's outcome counts and whether everything arrived. */
  finish(report: EngineReport, status: EngineStatus | null): void {
    this.#finished = true;
    const now = new Date(this.#clock.now()).toISOString();
    const paused = report.paused ?? status?.paused ?? null;
    this.#record = {
      ...this.#record,
      ...(status ? this.#fromStatus(status) : {}),
      state: 'finished',
      updatedAt: now,
      finishedAt: now,
      paused: paused?.message ?? null,
      outcome: outcomeOf(report),
      allArrived: paused === null && exitCode(report) === 0,
    };
    this.#write();
  }

  #fromStatus(status: EngineStatus): Partial<LastRunRecord> {
    return {
      updatedAt: new Date(this.#clock.now()).toISOString(),
      pending: status.pending,
      inFlight: status.inFlight,
      retrying: status.retrying,
      deadLetters: status.deadLetters,
      breaker: status.breaker,
      paused: status.paused?.message ?? null,
    };
  }

  #write(): void {
    try {
      writeJsonAtomic(this.path, this.#record);
    } catch (error) {
      this.#onError(error);
    }
  }
}

export type LastRunRead =
  | { readonly record: LastRunRecord; readonly problem: null }
  | { readonly record: null; readonly problem: string | null };

const isCount = (value: unknown): boolean =>
  value === null || (typeof value === 'number' && Number.isInteger(value) && value >= 0);

function isRecord(value: unknown): value is LastRunRecord {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Record<string, unknown>;
  return (
    r.version === 1 &&
    (r.state === 'running' || r.state === 'finished') &&
    typeof r.pid === 'number' &&
    Number.isInteger(r.pid) &&
    typeof r.host === 'string' &&
    ['command', 'remote', 'project', 'principal', 'startedAt', 'updatedAt'].every(
      (name) => typeof r[name] === 'string',
    ) &&
    !Number.isNaN(Date.parse(r.startedAt as string)) &&
    !Number.isNaN(Date.parse(r.updatedAt as string)) &&
    (r.finishedAt === null || typeof r.finishedAt === 'string') &&
    ['pending', 'inFlight', 'retrying', 'deadLetters'].every((name) => isCount(r[name])) &&
    (r.breaker === null || ['closed', 'open', 'half-open'].includes(r.breaker as string)) &&
    (r.paused === null || typeof r.paused === 'string') &&
    (r.allArrived === null || typeof r.allArrived === 'boolean') &&
    (r.outcome === null || (typeof r.outcome === 'object' && r.outcome !== undefined))
  );
}

/** Reads `last-run.json`; a missing file is no record, a damaged one a problem to mention. */
export function readLastRun(stateDir: string): LastRunRead {
  const path = join(stateDir, LAST_RUN_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { record: null, problem: code === 'ENOENT' ? null : `${path} cannot be read (${code})` };
  }
  try {
    const value: unknown = JSON.parse(text);
    if (isRecord(value)) return { record: value, problem: null };
  } catch {
    // Said below.
  }
  return { record: null, problem: `${path} is not a last-run record; it was ignored` };
}

/** Whether a process with this pid exists (on this host). */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, under another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * What the record says now: `running` (its process is alive), `interrupted`
 * (it said running, but its process is gone: killed or crashed), `finished`,
 * or `elsewhere` (running on another host, which this one cannot check).
 */
export function runState(
  record: LastRunRecord,
  isAlive: (pid: number) => boolean = pidAlive,
): 'running' | 'interrupted' | 'finished' | 'elsewhere' {
  if (record.state === 'finished') return 'finished';
  if (record.host !== hostname()) return 'elsewhere';
  return isAlive(record.pid) ? 'running' : 'interrupted';
}
