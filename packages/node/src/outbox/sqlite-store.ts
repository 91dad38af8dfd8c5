import { randomFillSync } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import {
  ClosedError,
  StateError,
  isUpsyncError,
  systemClock,
  type Clock,
  type GroupState,
} from '@upsync/core';
// These move to '@upsync/core' once its index exports the outbox.
import {
  LANES,
  checkDeadLetter,
  checkDeadLetterCap,
  checkKey,
  checkLeaseMs,
  checkListDeadLetters,
  checkOwner,
  checkPacing,
  checkRelease,
  checkScope,
  checkSeq,
  checkSeqList,
  checkSynced,
  compareClaimOrder,
  inheritRetryState,
  isLeased,
  laneRank,
  normalizeClaim,
  normalizeVersion,
  settle,
  type NormalizedVersion,
} from '@upsync/core';
import {
  DEFAULT_DEAD_LETTER_CAP,
  type ClaimOptions,
  type DeadLetterOptions,
  type DeadLetterRow,
  type ExtendLeaseOptions,
  type ListDeadLettersOptions,
  type OutboxCounts,
  type OutboxLock,
  type OutboxScope,
  type OutboxStore,
  type OutboxVersion,
  type PendingBody,
  type PendingRow,
  type PurgeDeadLettersOptions,
  type ReleaseOptions,
  type StoredVersion,
  type SyncedInput,
  type SyncedRow,
} from '@upsync/core';
import { TransactionQueue } from './transaction-queue.ts';

export interface SqliteOutboxStoreOptions {
  /** The database file, e.g. `<state>/outbox.db`. Its folder is created when missing. */
  path: string;
  /** Timestamps and lease expiry; default the system clock. */
  clock?: Clock;
  /** Dead letters kept per scope, the oldest dropped first; default 10,000. */
  deadLetterCap?: number;
  /** Generates a version's Idempotency-Key when the caller gives none; default 128 random bits. */
  newIdempotencyKey?: () => string;
  /**
   * `full` (default): a resolved write survives power loss. `normal` keeps it
   * through a process crash only (WAL is fsynced at checkpoints), for state
   * that can be rebuilt by a rescan; the outbox promises more, so full it is.
   */
  synchronous?: 'full' | 'normal';
  /** Writes submitted together share one transaction (default true). */
  groupCommit?: boolean;
  /** How long a write waits for another process's write to finish; default 5,000. */
  busyTimeoutMs?: number;
}

/** One entry per schema version; user_version is how many have run. Never edit one: append. */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE scopes (
    id INTEGER PRIMARY KEY,
    remote TEXT NOT NULL,
    project TEXT NOT NULL,
    principal TEXT NOT NULL,
    -- The last seq handed out: seqs are never reused, even once their rows are gone.
    last_seq INTEGER NOT NULL DEFAULT 0,
    -- Kept here so the cap check on each dead letter is O(1), not a count(*).
    dead_count INTEGER NOT NULL DEFAULT 0,
    dead_dropped INTEGER NOT NULL DEFAULT 0,
    pacing TEXT NOT NULL DEFAULT '[]',
    UNIQUE (remote, project, principal)
  );
  CREATE TABLE pending (
    scope_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    key TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('put', 'delete')),
    digest TEXT,
    size INTEGER NOT NULL,
    body_type TEXT CHECK (body_type IN ('bytes', 'file')),
    body BLOB,
    file_path TEXT,
    file_size INTEGER,
    file_mtime_ms REAL,
    file_digest TEXT,
    idem_key TEXT NOT NULL,
    content_type TEXT,
    lane INTEGER NOT NULL,
    ordered INTEGER NOT NULL,
    depends_on TEXT,
    attempts INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    budget_started_ms INTEGER,
    next_attempt_ms INTEGER NOT NULL,
    lease_owner TEXT,
    lease_expires_ms INTEGER,
    last_error TEXT,
    PRIMARY KEY (scope_id, seq)
  );
  -- The oldest version of a key, earlier versions (supersede, dependsOn).
  CREATE INDEX pending_key ON pending (scope_id, key, seq);
  -- claim walks this in its hand-out order and stops at the limit.
  CREATE INDEX pending_due ON pending (scope_id, lane, next_attempt_ms, seq);
  CREATE TABLE synced (
    scope_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    digest TEXT,
    size INTEGER NOT NULL,
    etag TEXT,
    remote_mtime_ms INTEGER,
    synced_ms INTEGER NOT NULL,
    PRIMARY KEY (scope_id, key)
  ) WITHOUT ROWID;
  CREATE TABLE dead_letters (
    -- Rowid order is dead-letter order: the cap drops the lowest ids.
    id INTEGER PRIMARY KEY,
    scope_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    key TEXT NOT NULL,
    kind TEXT NOT NULL,
    digest TEXT,
    size INTEGER NOT NULL,
    body_type TEXT,
    body BLOB,
    file_path TEXT,
    file_size INTEGER,
    file_mtime_ms REAL,
    file_digest TEXT,
    idem_key TEXT NOT NULL,
    content_type TEXT,
    lane INTEGER NOT NULL,
    ordered INTEGER NOT NULL,
    depends_on TEXT,
    attempts INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    reason TEXT NOT NULL,
    status INTEGER,
    dead_ms INTEGER NOT NULL,
    UNIQUE (scope_id, seq)
  );
  CREATE INDEX dead_letters_scope ON dead_letters (scope_id, id);
  `,
];

/** Columns a version has in both `pending` and `dead_letters`. */
const VERSION_COLUMNS =
  'seq, key, kind, digest, size, body_type, body, file_path, file_size, file_mtime_ms, file_digest, idem_key, content_type, lane, ordered, depends_on, attempts, created_ms';

type SqlValue = null | number | bigint | string | Uint8Array;
type SqlRow = Record<string, SqlValue>;

const num = (value: SqlValue | undefined): number => Number(value);
const numOrNull = (value: SqlValue | undefined): number | null =>
  value === null || value === undefined ? null : Number(value);
const strOrNull = (value: SqlValue | undefined): string | null =>
  value === null || value === undefined ? null : String(value);

function bodyOf(row: SqlRow): PendingBody | null {
  if (row.body_type === 'bytes') {
    const bytes = row.body instanceof Uint8Array ? row.body : new Uint8Array(0);
    return { type: 'bytes', bytes };
  }
  if (row.body_type === 'file') {
    return {
      type: 'file',
      path: String(row.file_path),
      size: num(row.file_size),
      mtimeMs: num(row.file_mtime_ms),
      digest: String(row.file_digest),
    };
  }
  return null;
}

function versionOf(row: SqlRow): StoredVersion {
  return {
    key: String(row.key),
    seq: num(row.seq),
    kind: row.kind === 'delete' ? 'delete' : 'put',
    digest: strOrNull(row.digest),
    size: num(row.size),
    body: bodyOf(row),
    idempotencyKey: String(row.idem_key),
    contentType: strOrNull(row.content_type),
    lane: LANES[num(row.lane)] ?? 'normal',
    ordered: row.ordered === 1,
    dependsOn: row.depends_on === null ? [] : (JSON.parse(String(row.depends_on)) as string[]),
    attempts: num(row.attempts),
    createdAtMs: num(row.created_ms),
  };
}

function pendingOf(row: SqlRow): PendingRow {
  return {
    ...versionOf(row),
    budgetStartedAtMs: numOrNull(row.budget_started_ms),
    nextAttemptAtMs: num(row.next_attempt_ms),
    leaseOwner: strOrNull(row.lease_owner),
    leaseExpiresAtMs: numOrNull(row.lease_expires_ms),
    lastError: strOrNull(row.last_error),
  };
}

function deadOf(row: SqlRow): DeadLetterRow {
  return {
    ...versionOf(row),
    reason: String(row.reason),
    status: numOrNull(row.status),
    deadLetteredAtMs: num(row.dead_ms),
  };
}

function syncedOf(row: SqlRow): SyncedRow {
  return {
    key: String(row.key),
    digest: strOrNull(row.digest),
    size: num(row.size),
    etag: strOrNull(row.etag),
    remoteMtimeMs: numOrNull(row.remote_mtime_ms),
    syncedAtMs: num(row.synced_ms),
  };
}

const PAGE = 256;

const KEY_BYTES = 16;
const keyPool = Buffer.alloc(KEY_BYTES * 256);
let keyPoolOffset = keyPool.length;

/**
 * The default Idempotency-Key: 128 random bits as 32 hex digits, like
 * `randomIdempotencyKey`, but the random bytes are fetched 4 KiB at a time and
 * each byte is used once. One call into the CSPRNG per key was a tenth of the
 * cost of an append in a burst.
 */
function pooledIdempotencyKey(): string {
  if (keyPoolOffset === keyPool.length) {
    randomFillSync(keyPool);
    keyPoolOffset = 0;
  }
  const key = keyPool.toString('hex', keyPoolOffset, keyPoolOffset + KEY_BYTES);
  keyPoolOffset += KEY_BYTES;
  return key;
}

interface LockHolder {
  pid: number;
  owner: string;
  host: string;
  sinceMs: number;
}

/**
 * The outbox in a SQLite file (`node:sqlite`), for the CLI and other Node
 * processes. WAL lets other processes append while the sender works; every
 * write is one transaction, and writes submitted together share one (group
 * commit), so a burst of appends costs one fsync.
 *
 * The sender lock is an exclusive lock the OS holds on `<path>.lock` for an
 * open SQLite connection: it goes away the moment its process dies (even by
 * SIGKILL), so a restarted run never waits for a stale lock to age out.
 * `<path>.lock.json` names the holder for the error message.
 */
export class SqliteOutboxStore implements OutboxStore {
  readonly path: string;
  readonly #clock: Clock;
  readonly #deadLetterCap: number;
  readonly #newIdempotencyKey: () => string;
  readonly #db: DatabaseSync;
  readonly #queue: TransactionQueue;
  readonly #statements = new Map<string, StatementSync>();
  readonly #scopeIds = new Map<string, number>();
  #lock: { db: DatabaseSync; owner: string } | undefined;
  #closed = false;

  constructor(options: SqliteOutboxStoreOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(`options must be { path, ... }, got ${String(options)}`);
    }
    if (typeof options.path !== 'string' || options.path === '') {
      throw new TypeError(`path must be a non-empty string, got ${JSON.stringify(options.path)}`);
    }
    const clock = options.clock ?? systemClock;
    if (typeof clock?.now !== 'function') {
      throw new TypeError(`clock must be a Clock, got ${typeof options.clock}`);
    }
    const cap = options.deadLetterCap ?? DEFAULT_DEAD_LETTER_CAP;
    checkDeadLetterCap(cap);
    const synchronous = options.synchronous ?? 'full';
    if (synchronous !== 'full' && synchronous !== 'normal') {
      throw new TypeError(
        `synchronous must be 'full' or 'normal', got ${JSON.stringify(synchronous)}`,
      );
    }
    const busyTimeoutMs = options.busyTimeoutMs ?? 5_000;
    if (!Number.isInteger(busyTimeoutMs) || busyTimeoutMs < 0) {
      throw new TypeError(`busyTimeoutMs must be an integer >= 0, got ${String(busyTimeoutMs)}`);
    }
    if (options.groupCommit !== undefined && typeof options.groupCommit !== 'boolean') {
      throw new TypeError(`groupCommit must be a boolean, got ${String(options.groupCommit)}`);
    }
    this.path = options.path;
    this.#clock = clock;
    this.#deadLetterCap = cap;
    this.#newIdempotencyKey = options.newIdempotencyKey ?? pooledIdempotencyKey;
    this.#db = this.#open(synchronous, busyTimeoutMs);
    this.#queue = new TransactionQueue({
      db: this.#db,
      groupCommit: options.groupCommit ?? true,
      // A rolled-back transaction may have created a scope row we cached.
      onRollback: () => this.#scopeIds.clear(),
      mapError: (error) => this.#stateError(error, 'failed'),
    });
  }

  #open(synchronous: 'full' | 'normal', busyTimeoutMs: number): DatabaseSync {
    let db: DatabaseSync | undefined;
    try {
      mkdirSync(dirname(this.path), { recursive: true });
      db = new DatabaseSync(this.path, { timeout: busyTimeoutMs });
      db.exec('PRAGMA journal_mode = WAL');
      db.exec(`PRAGMA synchronous = ${synchronous.toUpperCase()}`);
      this.#migrate(db);
      return db;
    } catch (error) {
      try {
        db?.close();
      } catch {
        // Already broken; the error below says why.
      }
      if (isUpsyncError(error)) throw error;
      throw this.#stateError(error, 'cannot be opened');
    }
  }

  #migrate(db: DatabaseSync): void {
    const version = Number(
      (db.prepare('PRAGMA user_version').get() as SqlRow | undefined)?.user_version ?? 0,
    );
    if (version > MIGRATIONS.length) {
      throw new StateError(
        `the outbox ${this.path} has schema version ${version}, newer than this upsync knows ` +
          `(${MIGRATIONS.length}); upgrade upsync to use it`,
      );
    }
    if (version === 0) {
      const tables = db
        .prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'")
        .get() as SqlRow;
      if (num(tables.n) > 0) {
        throw new StateError(
          `${this.path} is a SQLite database but not an upsync outbox; point --state at another folder`,
        );
      }
    }
    for (let next = version; next < MIGRATIONS.length; next++) {
      db.exec('BEGIN IMMEDIATE');
      try {
        db.exec(MIGRATIONS[next]!);
        db.exec(`PRAGMA user_version = ${next + 1}`);
        db.exec('COMMIT');
      } catch (error) {
        db.exec('ROLLBACK');
        throw error;
      }
    }
  }

  /** What SQLite or the file system said, as a StateError the CLI reports with exit code 2. */
  #stateError(error: unknown, what: string): unknown {
    if (isUpsyncError(error) || error instanceof TypeError) return error;
    const message = error instanceof Error ? error.message : String(error);
    const errcode = (error as { errcode?: number }).errcode;
    const hint =
      errcode === 26 || errcode === 11
        ? ': the file is corrupt or not an upsync outbox; move it aside to start over (its pending changes would be lost)'
        : errcode === 8 || errcode === 3 || errcode === 14
          ? ': check that the state folder is writable'
          : '';
    return new StateError(`the outbox ${this.path} ${what} (${message})${hint}`, { cause: error });
  }

  #statement(sql: string): StatementSync {
    let statement = this.#statements.get(sql);
    if (!statement) {
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  #get(sql: string, params: Record<string, SqlValue> = {}): SqlRow | undefined {
    return this.#statement(sql).get(params);
  }

  #all(sql: string, params: Record<string, SqlValue> = {}): SqlRow[] {
    return this.#statement(sql).all(params);
  }

  #run(sql: string, params: Record<string, SqlValue> = {}): number {
    return Number(this.#statement(sql).run(params).changes);
  }

  /** The scope's row id; created on first write, undefined for a read of a scope never written. */
  #scopeId(scope: OutboxScope, create: true): number;
  #scopeId(scope: OutboxScope, create: boolean): number | undefined;
  #scopeId(scope: OutboxScope, create: boolean): number | undefined {
    const cacheKey = JSON.stringify([scope.remote, scope.project, scope.principal]);
    const cached = this.#scopeIds.get(cacheKey);
    if (cached !== undefined) return cached;
    const params = { remote: scope.remote, project: scope.project, principal: scope.principal };
    const sql =
      'SELECT id FROM scopes WHERE remote = $remote AND project = $project AND principal = $principal';
    let row = this.#get(sql, params);
    if (!row && create) {
      this.#run(
        'INSERT INTO scopes (remote, project, principal) VALUES ($remote, $project, $principal)',
        params,
      );
      row = this.#get(sql, params);
    }
    if (!row) return undefined;
    const id = num(row.id);
    this.#scopeIds.set(cacheKey, id);
    return id;
  }

  /** Runs `operation` as (part of) a write transaction, after the writes submitted before it. */
  #submit<T>(
    scope: OutboxScope,
    create: boolean,
    check: (() => void) | undefined,
    operation: (scopeId: number | undefined) => T,
  ): Promise<T> {
    if (this.#closed) return Promise.reject(new ClosedError('the outbox store is closed'));
    try {
      checkScope(scope);
      check?.();
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    return this.#queue.submit(() => operation(this.#scopeId(scope, create)));
  }

  #pendingRow(scopeId: number, key: string, seq: number): SqlRow | undefined {
    return this.#get(
      'SELECT * FROM pending WHERE scope_id = $scope AND seq = $seq AND key = $key',
      {
        scope: scopeId,
        seq,
        key,
      },
    );
  }

  #insertPending(
    scopeId: number,
    version: NormalizedVersion | StoredVersion,
    nextAttemptAtMs: number,
    createdAtMs: number,
  ): PendingRow {
    // Positional parameters: this runs once per append, and binding by name
    // (an object built per row, each name looked up) was a good part of its cost.
    const next = this.#statement(
      'UPDATE scopes SET last_seq = last_seq + 1 WHERE id = ? RETURNING last_seq',
    ).get(scopeId) as SqlRow | undefined;
    if (!next) throw new StateError(`the outbox ${this.path} lost scope row ${scopeId}`);
    const seq = num(next.last_seq);
    const body = version.body;
    const file = body?.type === 'file' ? body : null;
    this.#statement(
      `INSERT INTO pending (scope_id, ${VERSION_COLUMNS}, next_attempt_ms)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)`,
    ).run(
      scopeId,
      seq,
      version.key,
      version.kind,
      version.digest,
      version.size,
      body?.type ?? null,
      body?.type === 'bytes' ? body.bytes : null,
      file?.path ?? null,
      file?.size ?? null,
      file?.mtimeMs ?? null,
      file?.digest ?? null,
      version.idempotencyKey,
      version.contentType,
      laneRank(version.lane),
      version.ordered ? 1 : 0,
      version.dependsOn.length === 0 ? null : JSON.stringify(version.dependsOn),
      createdAtMs,
      nextAttemptAtMs,
    );
    return {
      key: version.key,
      seq,
      kind: version.kind,
      digest: version.digest,
      size: version.size,
      body: version.body,
      idempotencyKey: version.idempotencyKey,
      contentType: version.contentType,
      lane: version.lane,
      ordered: version.ordered,
      dependsOn: [...version.dependsOn],
      attempts: 0,
      createdAtMs,
      budgetStartedAtMs: null,
      nextAttemptAtMs,
      leaseOwner: null,
      leaseExpiresAtMs: null,
      lastError: null,
    };
  }

  #writeSynced(scopeId: number, key: string, synced: SyncedInput | null): void {
    if (synced === null) {
      this.#run('DELETE FROM synced WHERE scope_id = $scope AND key = $key', {
        scope: scopeId,
        key,
      });
      return;
    }
    this.#run(
      `INSERT INTO synced (scope_id, key, digest, size, etag, remote_mtime_ms, synced_ms)
       VALUES ($scope, $key, $digest, $size, $etag, $mtime, $now)
       ON CONFLICT (scope_id, key) DO UPDATE SET digest = excluded.digest, size = excluded.size,
         etag = excluded.etag, remote_mtime_ms = excluded.remote_mtime_ms, synced_ms = excluded.synced_ms`,
      {
        scope: scopeId,
        key,
        digest: synced.digest,
        size: synced.size,
        etag: synced.etag ?? null,
        mtime: synced.remoteMtimeMs ?? null,
        now: this.#clock.now(),
      },
    );
  }

  append(scope: OutboxScope, version: OutboxVersion): Promise<PendingRow> {
    const now = this.#clock.now();
    let normalized: NormalizedVersion;
    return this.#submit(
      scope,
      true,
      () => {
        normalized = normalizeVersion(version, {
          nowMs: now,
          newIdempotencyKey: this.#newIdempotencyKey,
        });
      },
      (scopeId) => this.#insertPending(scopeId!, normalized, normalized.nextAttemptAtMs, now),
    );
  }

  claim(scope: OutboxScope, options: ClaimOptions): Promise<PendingRow[]> {
    let claim: ReturnType<typeof normalizeClaim>;
    return this.#submit(
      scope,
      false,
      () => {
        claim = normalizeClaim(options, this.#clock.now());
      },
      (scopeId) => {
        if (scopeId === undefined) return [];
        const { now } = claim;
        const dependenciesClear = (row: PendingRow): boolean =>
          row.dependsOn.every(
            (dep) =>
              !this.#get(
                'SELECT 1 AS x FROM pending WHERE scope_id = $scope AND key = $key AND seq < $seq LIMIT 1',
                { scope: scopeId, key: dep, seq: row.seq },
              ),
          );
        const picked: PendingRow[] = [];
        if (claim.keys) {
          for (const key of claim.keys) {
            const head = this.#get(
              'SELECT * FROM pending WHERE scope_id = $scope AND key = $key ORDER BY seq LIMIT 1',
              { scope: scopeId, key },
            );
            if (!head) continue;
            const row = pendingOf(head);
            if (row.nextAttemptAtMs <= now && !isLeased(row, now) && dependenciesClear(row)) {
              picked.push(row);
            }
          }
          picked.sort(compareClaimOrder);
          picked.splice(claim.limit);
        } else {
          // Walks due, unleased rows in hand-out order; only the oldest version of
          // a key qualifies, so a key never has two rows out at once.
          const candidates = this.#statement(
            `SELECT * FROM pending AS p
           WHERE p.scope_id = $scope AND p.next_attempt_ms <= $now
             AND (p.lease_expires_ms IS NULL OR p.lease_expires_ms <= $now)
             AND NOT EXISTS (SELECT 1 FROM pending AS e
                             WHERE e.scope_id = p.scope_id AND e.key = p.key AND e.seq < p.seq)
           ORDER BY p.lane, p.next_attempt_ms, p.seq`,
          ).iterate({ scope: scopeId, now }) as IterableIterator<SqlRow>;
          for (const candidate of candidates) {
            const row = pendingOf(candidate);
            if (dependenciesClear(row)) picked.push(row);
            if (picked.length === claim.limit) break;
          }
        }
        const expires = now + claim.leaseMs;
        return picked.map((row) => {
          this.#run(
            'UPDATE pending SET lease_owner = $owner, lease_expires_ms = $expires WHERE scope_id = $scope AND seq = $seq',
            { owner: claim.owner, expires, scope: scopeId, seq: row.seq },
          );
          return { ...row, leaseOwner: claim.owner, leaseExpiresAtMs: expires };
        });
      },
    );
  }

  extendLease(
    scope: OutboxScope,
    key: string,
    seq: number,
    options: ExtendLeaseOptions,
  ): Promise<boolean> {
    return this.#submit(
      scope,
      false,
      () => {
        checkKey(key);
        checkSeq(seq);
        checkOwner(options?.owner);
        checkLeaseMs(options.leaseMs);
      },
      (scopeId) => {
        if (scopeId === undefined) return false;
        const now = this.#clock.now();
        return (
          this.#run(
            `UPDATE pending SET lease_expires_ms = $expires
           WHERE scope_id = $scope AND seq = $seq AND key = $key AND lease_owner = $owner
             AND lease_expires_ms > $now`,
            { expires: now + options.leaseMs, scope: scopeId, seq, key, owner: options.owner, now },
          ) === 1
        );
      },
    );
  }

  ack(scope: OutboxScope, key: string, seq: number, synced: SyncedInput | null): Promise<boolean> {
    return this.#submit(
      scope,
      false,
      () => {
        checkKey(key);
        checkSeq(seq);
        checkSynced(synced);
      },
      (scopeId) => {
        if (scopeId === undefined) return false;
        const deleted = this.#run(
          'DELETE FROM pending WHERE scope_id = $scope AND seq = $seq AND key = $key',
          { scope: scopeId, seq, key },
        );
        if (deleted === 0) return false;
        this.#writeSynced(scopeId, key, synced);
        return true;
      },
    );
  }

  release(scope: OutboxScope, key: string, seq: number, options: ReleaseOptions): Promise<boolean> {
    return this.#submit(
      scope,
      false,
      () => {
        checkKey(key);
        checkSeq(seq);
        checkRelease(options);
      },
      (scopeId) => {
        if (scopeId === undefined) return false;
        const found = this.#pendingRow(scopeId, key, seq);
        if (!found) return false;
        const row = pendingOf(found);
        if (isLeased(row, this.#clock.now()) && row.leaseOwner !== options.owner) return false;
        this.#run(
          `UPDATE pending SET lease_owner = NULL, lease_expires_ms = NULL, next_attempt_ms = $next,
           attempts = $attempts, budget_started_ms = $budget, last_error = $error
         WHERE scope_id = $scope AND seq = $seq`,
          {
            next: options.nextAttemptAtMs,
            attempts: options.attempts ?? row.attempts,
            budget:
              options.budgetStartedAtMs === undefined
                ? row.budgetStartedAtMs
                : options.budgetStartedAtMs,
            error: options.lastError === undefined ? row.lastError : options.lastError,
            scope: scopeId,
            seq,
          },
        );
        return true;
      },
    );
  }

  supersede(scope: OutboxScope, key: string, seq: number): Promise<number> {
    return this.#submit(
      scope,
      false,
      () => {
        checkKey(key);
        checkSeq(seq);
      },
      (scopeId) => {
        if (scopeId === undefined) return 0;
        const found = this.#pendingRow(scopeId, key, seq);
        if (!found) return 0;
        const now = this.#clock.now();
        const gone = this.#all(
          `SELECT * FROM pending WHERE scope_id = $scope AND key = $key AND seq < $seq AND ordered = 0
           AND (lease_expires_ms IS NULL OR lease_expires_ms <= $now) ORDER BY seq`,
          { scope: scopeId, key, seq, now },
        ).map(pendingOf);
        if (gone.length === 0) return 0;
        const state = inheritRetryState(pendingOf(found), gone);
        this.#run(
          `UPDATE pending SET attempts = $attempts, budget_started_ms = $budget,
           next_attempt_ms = $next, last_error = $error WHERE scope_id = $scope AND seq = $seq`,
          {
            attempts: state.attempts,
            budget: state.budgetStartedAtMs,
            next: state.nextAttemptAtMs,
            error: state.lastError,
            scope: scopeId,
            seq,
          },
        );
        for (const row of gone) {
          this.#run('DELETE FROM pending WHERE scope_id = $scope AND seq = $seq', {
            scope: scopeId,
            seq: row.seq,
          });
        }
        return gone.length;
      },
    );
  }

  deadLetter(
    scope: OutboxScope,
    key: string,
    seq: number,
    options: DeadLetterOptions,
  ): Promise<boolean> {
    return this.#submit(
      scope,
      false,
      () => {
        checkKey(key);
        checkSeq(seq);
        checkDeadLetter(options);
      },
      (scopeId) => {
        if (scopeId === undefined) return false;
        const moved = this.#run(
          `INSERT INTO dead_letters (scope_id, ${VERSION_COLUMNS}, reason, status, dead_ms)
         SELECT scope_id, seq, key, kind, digest, size, body_type, body, file_path, file_size,
                file_mtime_ms, file_digest, idem_key, content_type, lane, ordered, depends_on,
                $attempts, created_ms, $reason, $status, $now
         FROM pending WHERE scope_id = $scope AND seq = $seq AND key = $key`,
          {
            attempts: options.attempts,
            reason: options.reason,
            status: options.status,
            now: this.#clock.now(),
            scope: scopeId,
            seq,
            key,
          },
        );
        if (moved === 0) return false;
        this.#run('DELETE FROM pending WHERE scope_id = $scope AND seq = $seq', {
          scope: scopeId,
          seq,
        });
        const count = num(
          this.#get(
            'UPDATE scopes SET dead_count = dead_count + 1 WHERE id = $scope RETURNING dead_count',
            { scope: scopeId },
          )?.dead_count,
        );
        const over = count - this.#deadLetterCap;
        if (over > 0) {
          this.#run(
            `DELETE FROM dead_letters WHERE id IN
             (SELECT id FROM dead_letters WHERE scope_id = $scope ORDER BY id LIMIT $over)`,
            { scope: scopeId, over },
          );
          this.#run(
            `UPDATE scopes SET dead_dropped = dead_dropped + $over, dead_count = dead_count - $over
           WHERE id = $scope`,
            { scope: scopeId, over },
          );
        }
        return true;
      },
    );
  }

  listDeadLetters(
    scope: OutboxScope,
    options: ListDeadLettersOptions = {},
  ): Promise<DeadLetterRow[]> {
    return this.#submit(
      scope,
      false,
      () => checkListDeadLetters(options),
      (scopeId) => {
        if (scopeId === undefined) return [];
        const params = { scope: scopeId, key: options.key ?? null, limit: options.limit ?? -1 };
        return this.#all(
          `SELECT * FROM dead_letters WHERE scope_id = $scope AND ($key IS NULL OR key = $key)
         ORDER BY id LIMIT $limit`,
          params,
        ).map(deadOf);
      },
    );
  }

  retryDeadLetter(scope: OutboxScope, seq: number): Promise<PendingRow | undefined> {
    return this.#submit(
      scope,
      false,
      () => {
        checkSeq(seq);
      },
      (scopeId) => {
        if (scopeId === undefined) return undefined;
        const found = this.#get(
          'SELECT * FROM dead_letters WHERE scope_id = $scope AND seq = $seq',
          {
            scope: scopeId,
            seq,
          },
        );
        if (!found) return undefined;
        this.#deleteDeadLetter(scopeId, seq);
        const now = this.#clock.now();
        // A new version: the remote refused the old key for good and may replay that refusal.
        const version = { ...versionOf(found), idempotencyKey: this.#newIdempotencyKey() };
        return this.#insertPending(scopeId, version, now, now);
      },
    );
  }

  purgeDeadLetters(scope: OutboxScope, options: PurgeDeadLettersOptions = {}): Promise<number> {
    const seqs = options.seqs;
    return this.#submit(
      scope,
      false,
      () => checkSeqList(seqs),
      (scopeId) => {
        if (scopeId === undefined) return 0;
        if (seqs === undefined) {
          const removed = this.#run('DELETE FROM dead_letters WHERE scope_id = $scope', {
            scope: scopeId,
          });
          this.#run('UPDATE scopes SET dead_count = 0 WHERE id = $scope', { scope: scopeId });
          return removed;
        }
        let removed = 0;
        for (const seq of seqs) removed += this.#deleteDeadLetter(scopeId, seq);
        return removed;
      },
    );
  }

  #deleteDeadLetter(scopeId: number, seq: number): number {
    const removed = this.#run('DELETE FROM dead_letters WHERE scope_id = $scope AND seq = $seq', {
      scope: scopeId,
      seq,
    });
    this.#run('UPDATE scopes SET dead_count = dead_count - $removed WHERE id = $scope', {
      scope: scopeId,
      removed,
    });
    return removed;
  }

  async *pendingEntries(scope: OutboxScope): AsyncIterable<PendingRow> {
    // Pages by seq, each page a read of its own: rows acked meanwhile do not upset the walk.
    let after = 0;
    for (;;) {
      const page = await this.#submit(scope, false, undefined, (scopeId) =>
        scopeId === undefined
          ? []
          : this.#all(
              'SELECT * FROM pending WHERE scope_id = $scope AND seq > $after ORDER BY seq LIMIT $limit',
              { scope: scopeId, after, limit: PAGE },
            ).map(pendingOf),
      );
      yield* page;
      if (page.length < PAGE) return;
      after = page[page.length - 1]!.seq;
    }
  }

  getSynced(scope: OutboxScope, key: string): Promise<SyncedRow | undefined> {
    return this.#submit(
      scope,
      false,
      () => {
        checkKey(key);
      },
      (scopeId) => {
        if (scopeId === undefined) return undefined;
        const row = this.#get('SELECT * FROM synced WHERE scope_id = $scope AND key = $key', {
          scope: scopeId,
          key,
        });
        return row && syncedOf(row);
      },
    );
  }

  setSynced(scope: OutboxScope, key: string, synced: SyncedInput | null): Promise<void> {
    return this.#submit(
      scope,
      true,
      () => {
        checkKey(key);
        checkSynced(synced);
      },
      (scopeId) => this.#writeSynced(scopeId!, key, synced),
    );
  }

  async *syncedEntries(scope: OutboxScope): AsyncIterable<SyncedRow> {
    let after: string | null = null;
    for (;;) {
      const from: string | null = after;
      const page: SyncedRow[] = await this.#submit(scope, false, undefined, (scopeId) =>
        scopeId === undefined
          ? []
          : this.#all(
              `SELECT * FROM synced WHERE scope_id = $scope AND ($after IS NULL OR key > $after)
               ORDER BY key LIMIT $limit`,
              { scope: scopeId, after: from, limit: PAGE },
            ).map(syncedOf),
      );
      yield* page;
      if (page.length < PAGE) return;
      after = page[page.length - 1]!.key;
    }
  }

  counts(scope: OutboxScope): Promise<OutboxCounts> {
    return this.#submit(scope, false, undefined, (scopeId) => {
      if (scopeId === undefined) {
        return { pending: 0, inFlight: 0, deadLetters: 0, droppedDeadLetters: 0 };
      }
      const params = { scope: scopeId, now: this.#clock.now() };
      const pending = this.#get(
        `SELECT count(*) AS n, coalesce(sum(lease_owner IS NOT NULL AND lease_expires_ms > $now), 0) AS leased
         FROM pending WHERE scope_id = $scope`,
        params,
      );
      const dead = this.#get('SELECT dead_count AS n, dead_dropped FROM scopes WHERE id = $scope', {
        scope: scopeId,
      });
      return {
        pending: num(pending?.n),
        inFlight: num(pending?.leased),
        deadLetters: num(dead?.n),
        droppedDeadLetters: num(dead?.dead_dropped),
      };
    });
  }

  savePacing(scope: OutboxScope, states: readonly GroupState[]): Promise<void> {
    let json = '[]';
    const check = (): void => {
      checkPacing(states);
      json = JSON.stringify(
        states.map(({ groupId, lastSendStartMs }) => ({ groupId, lastSendStartMs })),
      );
    };
    return this.#submit(scope, true, check, (scopeId) => {
      this.#run('UPDATE scopes SET pacing = $json WHERE id = $scope', { json, scope: scopeId! });
    });
  }

  loadPacing(scope: OutboxScope): Promise<GroupState[]> {
    return this.#submit(scope, false, undefined, (scopeId) => {
      if (scopeId === undefined) return [];
      const row = this.#get('SELECT pacing FROM scopes WHERE id = $scope', { scope: scopeId });
      return JSON.parse(String(row?.pacing ?? '[]')) as GroupState[];
    });
  }

  lock(owner: string): Promise<OutboxLock> {
    return settle(() => this.#takeLock(owner));
  }

  #takeLock(owner: string): OutboxLock {
    if (this.#closed) throw new ClosedError('the outbox store is closed');
    checkOwner(owner);
    const lockPath = `${this.path}.lock`;
    const infoPath = `${this.path}.lock.json`;
    if (this.#lock) throw this.#lockedError(infoPath);
    let db: DatabaseSync | undefined;
    try {
      db = new DatabaseSync(lockPath, { timeout: 0 });
      // EXCLUSIVE locking mode keeps the OS lock taken by the first write until
      // the connection closes, which the kernel does for a dead process.
      db.exec('PRAGMA locking_mode = EXCLUSIVE');
      db.exec('PRAGMA journal_mode = DELETE');
      db.exec('BEGIN EXCLUSIVE');
      db.exec('CREATE TABLE IF NOT EXISTS held (at INTEGER)');
      db.exec('COMMIT');
    } catch (error) {
      try {
        db?.close();
      } catch {
        // Nothing held; the lock error below is what matters.
      }
      if ((error as { errcode?: number }).errcode === 5) throw this.#lockedError(infoPath);
      throw this.#stateError(error, `lock ${lockPath} cannot be taken`);
    }
    const holder: LockHolder = {
      pid: process.pid,
      owner,
      host: hostname(),
      sinceMs: this.#clock.now(),
    };
    try {
      writeFileSync(infoPath, JSON.stringify(holder));
    } catch {
      // Only the error message of a second process depends on it.
    }
    const held = { db, owner };
    this.#lock = held;
    const release = (): Promise<void> =>
      settle(() => {
        if (this.#lock !== held) return;
        this.#lock = undefined;
        rmSync(infoPath, { force: true });
        held.db.close();
      });
    return { owner, release, [Symbol.asyncDispose]: release };
  }

  #lockedError(infoPath: string): StateError {
    let holder: Partial<LockHolder> = {};
    try {
      holder = JSON.parse(readFileSync(infoPath, 'utf8')) as Partial<LockHolder>;
    } catch {
      // Being written or removed right now: say what we know.
    }
    const who =
      holder.pid === undefined
        ? 'another process'
        : `pid ${holder.pid}${holder.host && holder.host !== hostname() ? ` on ${holder.host}` : ''}` +
          ` (owner ${JSON.stringify(holder.owner)}` +
          `${holder.sinceMs === undefined ? '' : `, since ${new Date(holder.sinceMs).toISOString()}`})`;
    return new StateError(
      `the outbox ${this.path} is in use by ${who}; one process sends from a state folder at a time ` +
        '(stop it, or use another --state folder)',
    );
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#queue.close();
    if (this.#lock) {
      rmSync(`${this.path}.lock.json`, { force: true });
      this.#lock.db.close();
      this.#lock = undefined;
    }
    this.#statements.clear();
    this.#db.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
