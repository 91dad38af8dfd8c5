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
  /**
   * The same rows by key, each key's by seq (insertion order again). supersede and
   * claim look at one key's versions; without this index each call walked every
   * pending row, which made a coalescing push O(pending keys).
   */
  readonly byKey: Map<string, Map<number, Mutable<PendingRow>>>;
  readonly synced: Map<string, SyncedRow>;
  /** Oldest first. */
  dead: DeadLetterRow[];
  dropped: number;
  pacing: GroupState[];
}

const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, '0'));
const KEY_BYTES = 16;
const keyPool = new Uint8Array(KEY_BYTES * 256);
let keyPoolOffset = keyPool.length;

/**
 * The default Idempotency-Key: 128 random bits as 32 hex digits, like
 * `randomIdempotencyKey`, but the random bytes are fetched 4 KiB at a time and
 * each byte is used once. One call into the CSPRNG per key cost more than the
 * rest of an append.
 */
function pooledIdempotencyKey(): string {
  if (keyPoolOffset === keyPool.length) {
    globalThis.crypto.getRandomValues(keyPool);
    keyPoolOffset = 0;
  }
  let key = '';
  for (let i = keyPoolOffset; i < keyPoolOffset + KEY_BYTES; i++) key += HEX[keyPool[i]!]!;
  keyPoolOffset += KEY_BYTES;
  return key;
}

// Callers get copies: a buffer they reuse or mutate must not change what is stored.
function copyBody(body: PendingBody | null): PendingBody | null {
  return body?.type === 'bytes' ? { type: 'bytes', bytes: body.bytes.slice() } : body;
}

function copyRow<T extends StoredVersion>(row: T): T {
  return { ...row, body: copyBody(row.body), dependsOn: [...row.dependsOn] };
}

function addPending(data: ScopeData, row: Mutable<PendingRow>): void {
  data.pending.set(row.seq, row);
  const versions = data.byKey.get(row.key);
  if (versions) versions.set(row.seq, row);
  else data.byKey.set(row.key, new Map([[row.seq, row]]));
}

function removePending(data: ScopeData, row: PendingRow): void {
  data.pending.delete(row.seq);
  const versions = data.byKey.get(row.key);
  versions?.delete(row.seq);
  if (versions?.size === 0) data.byKey.delete(row.key);
}

/** The oldest pending version of `key`: the only one that may be sent. */
function headOf(data: ScopeData, key: string): Mutable<PendingRow> | undefined {
  const versions = data.byKey.get(key);
  if (!versions) return undefined;
  for (const row of versions.values()) return row;
  return undefined;
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
  /** The scope of the last call and its data: callers pass the same scope on every call. */
  #lastScope: { remote: string; project: string; principal: string; data: ScopeData } | undefined;
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
    this.#newIdempotencyKey = options.newIdempotencyKey ?? pooledIdempotencyKey;
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
      addPending(data, row);
      return copyRow(row);
    });
  }

  claim(scope: OutboxScope, options: ClaimOptions): Promise<PendingRow[]> {
    return settle(() => {
      const data = this.#data(scope);
      const claim = normalizeClaim(options, this.#clock.now());
      // The oldest pending version of each key (of each wanted key): the only one that may be sent.
      const heads: Mutable<PendingRow>[] = [];
      for (const key of claim.keys ? new Set(claim.keys) : data.byKey.keys()) {
        const head = headOf(data, key);
        if (head) heads.push(head);
      }
      const due = heads.filter(
        (row) =>
          row.nextAttemptAtMs <= claim.now &&
          !isLeased(row, claim.now) &&
          row.dependsOn.every((dep) => (headOf(data, dep)?.seq ?? Infinity) >= row.seq),
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
      removePending(data, row);
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
      const gone: Mutable<PendingRow>[] = [];
      for (const row of data.byKey.get(key)?.values() ?? []) {
        if (row.seq >= seq) break; // by seq: the rest are newer
        if (!row.ordered && !isLeased(row, now)) gone.push(row);
      }
      Object.assign(survivor, inheritRetryState(survivor, gone));
      for (const row of gone) removePending(data, row);
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
      removePending(data, row);
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
      addPending(data, row);
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
    // The same scope as last time (three string compares) skips the checks and
    // the JSON key, which cost more than the rest of an append.
    const last = this.#lastScope;
    if (
      last !== undefined &&
      typeof scope === 'object' &&
      scope !== null &&
      scope.remote === last.remote &&
      scope.project === last.project &&
      scope.principal === last.principal
    ) {
      return last.data;
    }
    checkScope(scope);
    const id = scopeId(scope);
    let data = this.#scopes.get(id);
    if (!data) {
      data = {
        lastSeq: 0,
        pending: new Map(),
        byKey: new Map(),
        synced: new Map(),
        dead: [],
        dropped: 0,
        pacing: [],
      };
      this.#scopes.set(id, data);
    }
    const { remote, project, principal } = scope;
    this.#lastScope = { remote, project, principal, data };
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
