// Reads a state folder's outbox without taking it over: `upsync status` and
// `upsync dlq list` work while a sender holds the folder's lock, never need
// write access, and never change (let alone reset) a damaged outbox.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { ConfigError, StateError, type OutboxScope } from '@upsync/core';
import { parseSyncOptions, type SyncOptions } from './sync-options.ts';

export const OUTBOX_FILE = 'outbox.db';

/** The outbox schema this reader knows: the number of migrations in sqlite-store.ts. */
const KNOWN_SCHEMA_VERSION = 1;

/** What `status` shows for one (remote, project, principal). */
export interface ScopeSummary extends OutboxScope {
  /** Rows in `pending`, in-flight ones included. */
  readonly pending: number;
  /** Rows of `pending` whose lease is live now: a sender is working on them. */
  readonly inFlight: number;
  readonly deadLetters: number;
  /** Dead letters the cap has dropped, ever. */
  readonly droppedDeadLetters: number;
  /** Keys the remote is known to have (the `synced` table). */
  readonly syncedKeys: number;
  /** The newest synced row's time, null when nothing was synced. */
  readonly lastSyncedAtMs: number | null;
}

/** A dead letter as `dlq list` shows it (the body stays in the outbox). */
export interface DeadLetterSummary {
  readonly key: string;
  readonly seq: number;
  readonly kind: 'put' | 'delete';
  /** The HTTP status of the refusal, null when it was not an HTTP answer. */
  readonly status: number | null;
  readonly reason: string;
  readonly attempts: number;
  readonly size: number;
  readonly deadLetteredAtMs: number;
}

type Row = Record<string, null | number | bigint | string | Uint8Array>;

const num = (value: Row[string] | undefined): number => Number(value ?? 0);

/**
 * A read-only connection to `<state>/outbox.db`. Plain reads in WAL mode
 * never wait for the sender, and the sender never waits for them.
 */
export class StateReader implements Disposable {
  readonly path: string;
  readonly #db: DatabaseSync;
  /** False for an outbox file no upsync process has written a schema to yet. */
  readonly #hasSchema: boolean;

  private constructor(path: string, db: DatabaseSync, hasSchema: boolean) {
    this.path = path;
    this.#db = db;
    this.#hasSchema = hasSchema;
  }

  /**
   * Opens the state folder's outbox read-only; null when the folder has none
   * (nothing synced yet). A file SQLite cannot read, or that is not an upsync
   * outbox, is a StateError naming it; the file is left as it is.
   */
  static open(stateDir: string): StateReader | null {
    const path = join(stateDir, OUTBOX_FILE);
    if (!existsSync(path)) return null;
    let db: DatabaseSync | undefined;
    try {
      db = new DatabaseSync(path, { readOnly: true, timeout: 5_000 });
      const version = num(
        (db.prepare('PRAGMA user_version').get() as Row | undefined)?.user_version,
      );
      const tables = new Set(
        (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Row[]).map(
          (row) => String(row.name),
        ),
      );
      if (version > KNOWN_SCHEMA_VERSION) {
        throw new StateError(
          `the outbox ${path} has schema version ${version}, newer than this upsync knows ` +
            `(${KNOWN_SCHEMA_VERSION}); upgrade upsync to read it`,
        );
      }
      const hasSchema = version > 0;
      const expected = ['scopes', 'pending', 'synced', 'dead_letters'];
      if (
        (hasSchema && expected.some((name) => !tables.has(name))) ||
        (!hasSchema && tables.size > 0)
      ) {
        throw new StateError(
          `${path} is not an upsync outbox (its tables are not upsync's); it was left as it is`,
        );
      }
      return new StateReader(path, db, hasSchema);
    } catch (error) {
      try {
        db?.close();
      } catch {
        // Nothing more to release; the error below says what went wrong.
      }
      if (error instanceof StateError) throw error;
      throw unreadable(path, error);
    }
  }

  /** Every scope in the outbox, by remote, project and principal; one consistent read. */
  scopes(nowMs: number): ScopeSummary[] {
    if (!this.#hasSchema) return [];
    const rows = this.#read(
      `SELECT s.remote, s.project, s.principal, s.dead_dropped,
         (SELECT count(*) FROM pending AS p WHERE p.scope_id = s.id) AS pending,
         (SELECT count(*) FROM pending AS p WHERE p.scope_id = s.id
            AND p.lease_owner IS NOT NULL AND p.lease_expires_ms > $now) AS in_flight,
         (SELECT count(*) FROM dead_letters AS d WHERE d.scope_id = s.id) AS dead,
         (SELECT count(*) FROM synced AS y WHERE y.scope_id = s.id) AS synced,
         (SELECT max(synced_ms) FROM synced AS y WHERE y.scope_id = s.id) AS last_synced
       FROM scopes AS s ORDER BY s.remote, s.project, s.principal`,
      { now: nowMs },
    );
    return rows.map((row) => ({
      remote: String(row.remote),
      project: String(row.project),
      principal: String(row.principal),
      pending: num(row.pending),
      inFlight: num(row.in_flight),
      deadLetters: num(row.dead),
      droppedDeadLetters: num(row.dead_dropped),
      syncedKeys: num(row.synced),
      lastSyncedAtMs: row.last_synced === null ? null : num(row.last_synced),
    }));
  }

  /** The scope's dead letters, oldest first (the order the cap drops them in). */
  deadLetters(scope: OutboxScope): DeadLetterSummary[] {
    if (!this.#hasSchema) return [];
    return this.#read(
      `SELECT d.key, d.seq, d.kind, d.status, d.reason, d.attempts, d.size, d.dead_ms
       FROM dead_letters AS d JOIN scopes AS s ON s.id = d.scope_id
       WHERE s.remote = $remote AND s.project = $project AND s.principal = $principal
       ORDER BY d.id`,
      { remote: scope.remote, project: scope.project, principal: scope.principal },
    ).map((row) => ({
      key: String(row.key),
      seq: num(row.seq),
      kind: row.kind === 'delete' ? 'delete' : 'put',
      status: row.status === null ? null : num(row.status),
      reason: String(row.reason),
      attempts: num(row.attempts),
      size: num(row.size),
      deadLetteredAtMs: num(row.dead_ms),
    }));
  }

  #read(sql: string, params: Record<string, string | number>): Row[] {
    try {
      return this.#db.prepare(sql).all(params);
    } catch (error) {
      throw unreadable(this.path, error);
    }
  }

  close(): void {
    this.#db.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

function unreadable(path: string, error: unknown): StateError {
  const message = error instanceof Error ? error.message : String(error);
  const errcode = (error as { errcode?: number }).errcode;
  const hint =
    errcode === 26 || errcode === 11
      ? ': the file is corrupt or not an upsync outbox; it was left as it is (move it aside to start over, losing its pending changes)'
      : errcode === 14 || errcode === 8 || errcode === 3
        ? ': check that the state folder is readable'
        : '';
  return new StateError(`the outbox ${path} cannot be read (${message})${hint}`, { cause: error });
}

/** The flags `parseSyncOptions` takes that name where the state is and how to send. */
const SYNC_FLAGS = [
  'config',
  'remote',
  'project',
  'state',
  'token-file',
  'token',
  'concurrency',
  'rate',
  'burst',
  'attempts',
  'retry-time',
  'log-level',
] as const;

/** Where a folder's state is, and how to send from it (null: not configured, and why). */
export interface Target {
  readonly stateDir: string;
  readonly remote: string | undefined;
  readonly project: string | undefined;
  readonly options: SyncOptions | null;
  readonly unsent: string | null;
}

/**
 * Reads the state folder, remote and project the way `sync` does (flags, the
 * UPSYNC_* environment, the config file), so `status` and `dlq` look where
 * `sync` writes. A missing remote, project or token is no error here (the
 * state can still be read, purged, put back); any other bad setting is.
 */
export function resolveTarget(
  values: Readonly<Record<string, string | boolean | undefined>>,
  dir: string,
  env: NodeJS.ProcessEnv,
): Target {
  const flags: string[] = [];
  for (const name of SYNC_FLAGS) {
    const value = values[name];
    if (typeof value === 'string') flags.push(`--${name}`, value);
  }
  const syncArgs = [dir, ...flags];
  let missing: ConfigError;
  try {
    const options = parseSyncOptions('sync', syncArgs, env)!;
    const { stateDir, remote, project } = options;
    return { stateDir, remote, project, options, unsent: null };
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    missing = error;
  }
  // The same settings with a stand-in token (a bad one in the environment must
  // not stop `status`): they name the scope and the state folder, nothing more.
  const probeEnv: NodeJS.ProcessEnv = { ...env, UPSYNC_TOKEN: 'upsync-probe' };
  delete probeEnv.UPSYNC_TOKEN_FILE;
  try {
    const { stateDir, remote, project } = parseSyncOptions('sync', syncArgs, probeEnv)!;
    return { stateDir, remote, project, options: null, unsent: missing.message };
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
  }
  // Stand-ins for what is not set (the first that parses says what was missing).
  const standIns = {
    remote: ['--remote', 'http://upsync-probe.invalid'],
    project: ['--project', 'upsync-probe'],
  };
  const tries: ReadonlyArray<ReadonlyArray<'remote' | 'project'>> = [
    ['project'],
    ['remote'],
    ['remote', 'project'],
  ];
  for (const names of tries) {
    if (names.some((name) => values[name] !== undefined)) continue;
    try {
      const probed = parseSyncOptions(
        'sync',
        [...syncArgs, ...names.flatMap((name) => standIns[name])],
        probeEnv,
      )!;
      return {
        stateDir: probed.stateDir,
        remote: names.includes('remote') ? undefined : probed.remote,
        project: names.includes('project') ? undefined : probed.project,
        options: null,
        unsent: missing.message,
      };
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
    }
  }
  // Not only a missing remote, project or token: a setting is wrong.
  throw missing;
}

/** A time as local ISO 8601 with its UTC offset, to the second: `2026-11-22T02:17:26+01:00`. */
export function localIso(ms: number): string {
  const date = new Date(ms);
  const pad = (n: number): string => String(n).padStart(2, '0');
  const offset = -date.getTimezoneOffset();
  const sign = offset >= 0 ? '+' : '-';
  const abs = Math.abs(offset);
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}` +
    `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`
  );
}

/** `5 minutes ago`, `just now`, `in 2 hours` (a clock set back); whole units, rounded down. */
export function timeAgo(ms: number, nowMs: number): string {
  const seconds = Math.floor(Math.abs(nowMs - ms) / 1000);
  if (seconds < 5) return 'just now';
  const [count, unit] =
    seconds < 60
      ? [seconds, 'second']
      : seconds < 3_600
        ? [Math.floor(seconds / 60), 'minute']
        : seconds < 86_400
          ? [Math.floor(seconds / 3_600), 'hour']
          : [Math.floor(seconds / 86_400), 'day'];
  const text = `${count} ${unit}${count === 1 ? '' : 's'}`;
  return ms > nowMs ? `in ${text}` : `${text} ago`;
}

/** `2026-11-22T02:17:26+01:00 (5 minutes ago)`. */
export function formatWhen(ms: number, nowMs: number): string {
  return `${localIso(ms)} (${timeAgo(ms, nowMs)})`;
}

/** `512 B`, `1.5 KiB`, `3.0 MiB`: binary units, as the CLI's size flags take them. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** Pads each column to its widest cell; the last column is not padded. */
export function alignColumns(rows: readonly (readonly string[])[], gap = '  '): string[] {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  }
  return rows.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join(gap)
      .trimEnd(),
  );
}
