import { ClosedError, StateError } from '../errors/upsync-error.ts';
import { compareKeys } from '../keys/compare-keys.ts';
import type { GroupState } from '../scheduling/scheduler.ts';
import { systemClock, type Clock } from '../time/clock.ts';
import {
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
  settle,
  inheritRetryState,
  isLeased,
  normalizeClaim,
  normalizeVersion,
  randomIdempotencyKey,
  scopeId,
} from './outbox-checks.ts';
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
} from './outbox-store.ts';

export interface MemoryOutboxStoreOptions {
  /** Timestamps and lease expiry; default the system clock. */
  clock?: Clock;
  /** Dead letters kept per scope, the oldest dropped first; default 10,000. */
  deadLetterCap?: number;
  /** Generates a version's Idempotency-Key when the caller gives none; default 128 random bits. */
  newIdempotencyKey?: () => string;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

interface ScopeData {
  lastSeq: number;
  /** By seq: a Map keeps insertion order, and seqs are appended in increasing order. */
  readonly pending: Map<number, Mutable<PendingRow>>;
  readonly synced: Map<string, SyncedRow>;
  /** Oldest first. */
  dead: DeadLetterRow[];
  dropped: number;
  pacing: GroupState[];
}

// Callers get copies: a buffer they reuse or mutate must not change what is stored.
function copyBody(body: PendingBody | null): PendingBody | null {
  return body?.type === 'bytes' ? { type: 'bytes', bytes: body.bytes.slice() } : body;
}

function copyRow<T extends StoredVersion>(row: T): T {
  return { ...row, body: copyBody(row.body), dependsOn: [...row.dependsOn] };
}

function toSynced(key: string, synced: SyncedInput, syncedAtMs: number): SyncedRow {
  return {
    key,
    digest: synced.digest,
    size: synced.size,
    etag: synced.etag ?? null,
    remoteMtimeMs: synced.remoteMtimeMs ?? null,
    syncedAtMs,
  };
}

/**
 * An outbox in memory: for tests, and for pages that accept losing pending
 * changes on reload. Everything is "durable" for the life of the object.
 */
export class MemoryOutboxStore implements OutboxStore {
  readonly #clock: Clock;
  readonly #deadLetterCap: number;
  readonly #newIdempotencyKey: () => string;
  readonly #scopes = new Map<string, ScopeData>();
  #lockOwner: string | undefined;
  #closed = false;

  constructor(options: MemoryOutboxStoreOptions = {}) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(`options must be an object, got ${String(options)}`);
    }
    this.#clock = options.clock ?? systemClock;
    if (typeof this.#clock.now !== 'function') {
      throw new TypeError(`clock must be a Clock, got ${typeof options.clock}`);
    }
    const cap = options.deadLetterCap ?? DEFAULT_DEAD_LETTER_CAP;
    checkDeadLetterCap(cap);
    this.#deadLetterCap = cap;
    this.#newIdempotencyKey = options.newIdempotencyKey ?? randomIdempotencyKey;
  }

  append(scope: OutboxScope, version: OutboxVersion): Promise<PendingRow> {
    return settle(() => {
      const data = this.#data(scope);
      const now = this.#clock.now();
      const normalized = normalizeVersion(version, {
        nowMs: now,
        newIdempotencyKey: this.#newIdempotencyKey,
      });
      const row: PendingRow = {
        ...normalized,
        seq: ++data.lastSeq,
        attempts: 0,
        createdAtMs: now,
        budgetStartedAtMs: null,
        leaseOwner: null,
        leaseExpiresAtMs: null,
        lastError: null,
      };
      data.pending.set(row.seq, row);
      return copyRow(row);
    });
  }

  claim(scope: OutboxScope, options: ClaimOptions): Promise<PendingRow[]> {
    return settle(() => {
      const data = this.#data(scope);
      const claim = normalizeClaim(options, this.#clock.now());
      // The oldest pending version of each key: the only one that may be sent.
      const heads = new Map<string, Mutable<PendingRow>>();
      for (const row of data.pending.values()) if (!heads.has(row.key)) heads.set(row.key, row);
      const wanted = claim.keys && new Set(claim.keys);
      const due = [...heads.values()].filter(
        (row) =>
          (!wanted || wanted.has(row.key)) &&
          row.nextAttemptAtMs <= claim.now &&
          !isLeased(row, claim.now) &&
          row.dependsOn.every((dep) => (heads.get(dep)?.seq ?? Infinity) >= row.seq),
      );
      due.sort(compareClaimOrder);
      return due.slice(0, claim.limit).map((row) => {
        row.leaseOwner = claim.owner;
        row.leaseExpiresAtMs = claim.now + claim.leaseMs;
        return copyRow(row);
      });
    });
  }

  extendLease(
    scope: OutboxScope,
    key: string,
    seq: number,
    options: ExtendLeaseOptions,
  ): Promise<boolean> {
    return settle(() => {
      const row = this.#row(scope, key, seq);
      checkOwner(options?.owner);
      checkLeaseMs(options.leaseMs);
      const now = this.#clock.now();
      if (!row || row.leaseOwner !== options.owner || !isLeased(row, now)) return false;
      row.leaseExpiresAtMs = now + options.leaseMs;
      return true;
    });
  }

  ack(scope: OutboxScope, key: string, seq: number, synced: SyncedInput | null): Promise<boolean> {
    return settle(() => {
      const row = this.#row(scope, key, seq);
      checkSynced(synced);
      if (!row) return false;
      const data = this.#data(scope);
      data.pending.delete(seq);
      if (synced === null) data.synced.delete(key);
      else data.synced.set(key, toSynced(key, synced, this.#clock.now()));
      return true;
    });
  }

  release(scope: OutboxScope, key: string, seq: number, options: ReleaseOptions): Promise<boolean> {
    return settle(() => {
      const row = this.#row(scope, key, seq);
      checkRelease(options);
      if (!row) return false;
      if (isLeased(row, this.#clock.now()) && row.leaseOwner !== options.owner) return false;
      row.leaseOwner = null;
      row.leaseExpiresAtMs = null;
      row.nextAttemptAtMs = options.nextAttemptAtMs;
      if (options.attempts !== undefined) row.attempts = options.attempts;
      if (options.budgetStartedAtMs !== undefined)
        row.budgetStartedAtMs = options.budgetStartedAtMs;
      if (options.lastError !== undefined) row.lastError = options.lastError;
      return true;
    });
  }

  supersede(scope: OutboxScope, key: string, seq: number): Promise<number> {
    return settle(() => {
      const survivor = this.#row(scope, key, seq);
      if (!survivor) return 0;
      const data = this.#data(scope);
      const now = this.#clock.now();
      const gone = [...data.pending.values()].filter(
        (row) => row.key === key && row.seq < seq && !row.ordered && !isLeased(row, now),
      );
      Object.assign(survivor, inheritRetryState(survivor, gone));
      for (const row of gone) data.pending.delete(row.seq);
      return gone.length;
    });
  }

  deadLetter(
    scope: OutboxScope,
    key: string,
    seq: number,
    options: DeadLetterOptions,
  ): Promise<boolean> {
    return settle(() => {
      const row = this.#row(scope, key, seq);
      checkDeadLetter(options);
      if (!row) return false;
      const data = this.#data(scope);
      data.pending.delete(seq);
      data.dead.push({
        key: row.key,
        seq: row.seq,
        kind: row.kind,
        digest: row.digest,
        size: row.size,
        body: row.body,
        idempotencyKey: row.idempotencyKey,
        contentType: row.contentType,
        lane: row.lane,
        ordered: row.ordered,
        dependsOn: row.dependsOn,
        attempts: options.attempts,
        createdAtMs: row.createdAtMs,
        reason: options.reason,
        status: options.status,
        deadLetteredAtMs: this.#clock.now(),
      });
      const over = data.dead.length - this.#deadLetterCap;
      if (over > 0) {
        data.dead = data.dead.slice(over);
        data.dropped += over;
      }
      return true;
    });
  }

  listDeadLetters(
    scope: OutboxScope,
    options: ListDeadLettersOptions = {},
  ): Promise<DeadLetterRow[]> {
    return settle(() => {
      const data = this.#data(scope);
      checkListDeadLetters(options);
      const rows = data.dead.filter((row) => options.key === undefined || row.key === options.key);
      return rows.slice(0, options.limit ?? rows.length).map(copyRow);
    });
  }

  retryDeadLetter(scope: OutboxScope, seq: number): Promise<PendingRow | undefined> {
    return settle(() => {
      const data = this.#data(scope);
      checkSeq(seq);
      const index = data.dead.findIndex((row) => row.seq === seq);
      const dead = data.dead[index];
      if (!dead) return undefined;
      data.dead.splice(index, 1);
      const now = this.#clock.now();
      const row: PendingRow = {
        key: dead.key,
        seq: ++data.lastSeq,
        kind: dead.kind,
        digest: dead.digest,
        size: dead.size,
        body: dead.body,
        idempotencyKey: this.#newIdempotencyKey(),
        contentType: dead.contentType,
        lane: dead.lane,
        ordered: dead.ordered,
        dependsOn: dead.dependsOn,
        attempts: 0,
        createdAtMs: now,
        budgetStartedAtMs: null,
        nextAttemptAtMs: now,
        leaseOwner: null,
        leaseExpiresAtMs: null,
        lastError: null,
      };
      data.pending.set(row.seq, row);
      return copyRow(row);
    });
  }

  purgeDeadLetters(scope: OutboxScope, options: PurgeDeadLettersOptions = {}): Promise<number> {
    return settle(() => {
      const data = this.#data(scope);
      checkSeqList(options.seqs);
      const before = data.dead.length;
      if (options.seqs === undefined) {
        data.dead = [];
      } else {
        const seqs = new Set(options.seqs);
        data.dead = data.dead.filter((row) => !seqs.has(row.seq));
      }
      return before - data.dead.length;
    });
  }

  async *pendingEntries(scope: OutboxScope): AsyncIterable<PendingRow> {
    const data = await settle(() => this.#data(scope));
    // A snapshot: rows acked while the caller iterates do not upset the walk.
    for (const row of [...data.pending.values()]) yield copyRow(row);
  }

  getSynced(scope: OutboxScope, key: string): Promise<SyncedRow | undefined> {
    return settle(() => {
      const data = this.#data(scope);
      checkKey(key);
      const row = data.synced.get(key);
      return row && { ...row };
    });
  }

  setSynced(scope: OutboxScope, key: string, synced: SyncedInput | null): Promise<void> {
    return settle(() => {
      const data = this.#data(scope);
      checkKey(key);
      checkSynced(synced);
      if (synced === null) data.synced.delete(key);
      else data.synced.set(key, toSynced(key, synced, this.#clock.now()));
    });
  }

  async *syncedEntries(scope: OutboxScope): AsyncIterable<SyncedRow> {
    const data = await settle(() => this.#data(scope));
    const keys = [...data.synced.keys()].sort(compareKeys);
    for (const key of keys) {
      const row = data.synced.get(key);
      if (row) yield { ...row };
    }
  }

  counts(scope: OutboxScope): Promise<OutboxCounts> {
    return settle(() => {
      const data = this.#data(scope);
      const now = this.#clock.now();
      let inFlight = 0;
      for (const row of data.pending.values()) if (isLeased(row, now)) inFlight++;
      return {
        pending: data.pending.size,
        inFlight,
        deadLetters: data.dead.length,
        droppedDeadLetters: data.dropped,
      };
    });
  }

  savePacing(scope: OutboxScope, states: readonly GroupState[]): Promise<void> {
    return settle(() => {
      const data = this.#data(scope);
      checkPacing(states);
      data.pacing = states.map((state) => ({ ...state }));
    });
  }

  loadPacing(scope: OutboxScope): Promise<GroupState[]> {
    return settle(() => {
      return this.#data(scope).pacing.map((state) => ({ ...state }));
    });
  }

  lock(owner: string): Promise<OutboxLock> {
    return settle(() => {
      this.#checkOpen();
      checkOwner(owner);
      if (this.#lockOwner !== undefined) {
        throw new StateError(
          `the outbox is locked by ${JSON.stringify(this.#lockOwner)}; only one sender at a time`,
        );
      }
      this.#lockOwner = owner;
      let held = true;
      const release = (): Promise<void> => {
        if (held) {
          held = false;
          this.#lockOwner = undefined;
        }
        return Promise.resolve();
      };
      return { owner, release, [Symbol.asyncDispose]: release };
    });
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#lockOwner = undefined;
    return Promise.resolve();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #checkOpen(): void {
    if (this.#closed) throw new ClosedError('the outbox store is closed');
  }

  #data(scope: OutboxScope): ScopeData {
    this.#checkOpen();
    checkScope(scope);
    const id = scopeId(scope);
    let data = this.#scopes.get(id);
    if (!data) {
      data = {
        lastSeq: 0,
        pending: new Map(),
        synced: new Map(),
        dead: [],
        dropped: 0,
        pacing: [],
      };
      this.#scopes.set(id, data);
    }
    return data;
  }

  #row(scope: OutboxScope, key: string, seq: number): Mutable<PendingRow> | undefined {
    const data = this.#data(scope);
    checkKey(key);
    checkSeq(seq);
    const row = data.pending.get(seq);
    return row?.key === key ? row : undefined;
  }
}
