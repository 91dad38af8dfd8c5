import type { GroupState } from '../scheduling/scheduler.ts';

/**
 * Whose outbox this is: every row of every table belongs to one scope, and no
 * operation ever reads or changes a row of another scope. `principal` is a
 * non-secret identity of the user (an account id or e-mail), never a token: it
 * is written to disk in plain text.
 */
export interface OutboxScope {
  readonly remote: string;
  readonly project: string;
  readonly principal: string;
}

/** Immediate goes ahead of everything else, then normal, then batch. */
export type Lane = 'immediate' | 'normal' | 'batch';

/** `delete` is a tombstone: it has no body, and its ack removes the synced row. */
export type VersionKind = 'put' | 'delete';

/**
 * A version's content. Pushed bytes are stored as they are. A file is stored as
 * a reference: the content is read when the send starts, and the reference's
 * size, mtime and digest (taken at intake) tell the sender whether the file
 * changed since, so it can requeue it with the new content instead of failing.
 */
export type PendingBody =
  | { readonly type: 'bytes'; readonly bytes: Uint8Array }
  | {
      readonly type: 'file';
      readonly path: string;
      readonly size: number;
      readonly mtimeMs: number;
      readonly digest: string;
    };

/** What the caller hands to {@link OutboxStore.append}. */
export interface OutboxVersion {
  readonly key: string;
  /** Default `put`. */
  readonly kind?: VersionKind;
  /** The content's digest; required for a put, absent (null) for a delete. */
  readonly digest?: string | null;
  /** The content's size in bytes; required for a put, 0 for a delete. */
  readonly size?: number;
  /** Required for a put, absent for a delete. A bytes body's length must equal `size`. */
  readonly body?: PendingBody | null;
  /**
   * The version's Idempotency-Key. Leave it out and the store generates one (a
   * random 128-bit value, 32 hex digits); give one when the caller must know it
   * before the append resolves. Every retry of this version reuses it.
   */
  readonly idempotencyKey?: string;
  readonly contentType?: string | null;
  /** Default `normal`. */
  readonly lane?: Lane;
  /** An ordered version is never superseded (coalesced) and goes after every earlier version of its key. */
  readonly ordered?: boolean;
  /** Keys whose earlier versions must all leave `pending` before this one is claimed. */
  readonly dependsOn?: readonly string[];
  /** The scheduler's due time (clock ms); default now. */
  readonly nextAttemptAtMs?: number;
}

/** The fields a version keeps in `pending` and in the dead-letter queue. */
export interface StoredVersion {
  readonly key: string;
  /** Assigned by the store: increases with every append in a scope and is never reused. */
  readonly seq: number;
  readonly kind: VersionKind;
  readonly digest: string | null;
  readonly size: number;
  readonly body: PendingBody | null;
  readonly idempotencyKey: string;
  readonly contentType: string | null;
  readonly lane: Lane;
  readonly ordered: boolean;
  readonly dependsOn: readonly string[];
  /** Attempts used (the caller records them: a call refused by an open breaker uses none). */
  readonly attempts: number;
  /** When the version was appended (clock ms). */
  readonly createdAtMs: number;
}

/** A row of `pending`. */
export interface PendingRow extends StoredVersion {
  /** When the retry budget's time started (clock ms), null until the first attempt. */
  readonly budgetStartedAtMs: number | null;
  /** Not claimed before this time (clock ms). */
  readonly nextAttemptAtMs: number;
  /** Who holds the lease; null when free. A lease whose expiry passed counts as free. */
  readonly leaseOwner: string | null;
  readonly leaseExpiresAtMs: number | null;
  readonly lastError: string | null;
}

/** A row of the dead-letter queue: the version as it was, and why the remote refused it. */
export interface DeadLetterRow extends StoredVersion {
  readonly reason: string;
  /** The HTTP status of the refusal, null when it was not an HTTP answer. */
  readonly status: number | null;
  readonly deadLetteredAtMs: number;
}

/** What an acknowledgement records in `synced`. */
export interface SyncedInput {
  readonly digest: string | null;
  readonly size: number;
  readonly etag?: string | null;
  /** The remote's date or mtime for the item (clock ms), where it gives one. */
  readonly remoteMtimeMs?: number | null;
}

/** A row of `synced`: the state of a key as of its last acknowledged send. */
export interface SyncedRow {
  readonly key: string;
  readonly digest: string | null;
  readonly size: number;
  readonly etag: string | null;
  readonly remoteMtimeMs: number | null;
  readonly syncedAtMs: number;
}

export interface ClaimOptions {
  /** Who takes the leases (a process or tab id; not secret). */
  readonly owner: string;
  /** How long the leases last; a lease not acked, released or extended by then expires. */
  readonly leaseMs: number;
  /** The most rows to claim; default 1. */
  readonly limit?: number;
  /** The time to claim at (clock ms); default the store's clock. */
  readonly now?: number;
  /** Claim only rows of these keys (the keys the scheduler released). */
  readonly keys?: readonly string[];
}

export interface ExtendLeaseOptions {
  readonly owner: string;
  readonly leaseMs: number;
}

export interface ReleaseOptions {
  /** The lease holder; a row whose live lease another owner holds is left alone. */
  readonly owner: string;
  readonly nextAttemptAtMs: number;
  /** Left as it was when absent. */
  readonly attempts?: number;
  readonly budgetStartedAtMs?: number | null;
  readonly lastError?: string | null;
}

export interface DeadLetterOptions {
  readonly reason: string;
  readonly status: number | null;
  readonly attempts: number;
}

export interface ListDeadLettersOptions {
  /** Only this key's dead letters. */
  readonly key?: string;
  /** The most rows to return, oldest first; default all. */
  readonly limit?: number;
}

export interface PurgeDeadLettersOptions {
  /** Only these dead letters (by seq); default every one of the scope. */
  readonly seqs?: readonly number[];
}

export interface OutboxCounts {
  /** Rows in `pending`, in-flight ones included. */
  readonly pending: number;
  /** Rows of `pending` whose lease is live now. */
  readonly inFlight: number;
  readonly deadLetters: number;
  /** Dead letters the cap has dropped in this scope, ever. */
  readonly droppedDeadLetters: number;
}

/** Held by the one process (or tab) that sends from an outbox. */
export interface OutboxLock extends AsyncDisposable {
  readonly owner: string;
  /** Lets another process take the lock. Idempotent. */
  release(): Promise<void>;
}

/** The dead-letter queue's default cap per scope. */
export const DEFAULT_DEAD_LETTER_CAP = 10_000;

/**
 * The durable record of pending changes and of what was last synced.
 *
 * What every store guarantees (the conformance suite in `./conformance.ts`
 * checks each point):
 * - **Durable intake.** A write resolves only once it is durable for that
 *   store's medium (disk for SQLite, the process's life for memory). Each
 *   method is atomic: after a crash it happened entirely or not at all.
 * - **Scopes are isolated.** Nothing under one (remote, project, principal)
 *   is seen or changed through another.
 * - **Lease, send, then acknowledge.** `claim` leases rows; only `ack`
 *   (delivered) and `deadLetter` (refused for good) take a row out of
 *   `pending`, and each removes exactly the seq it names, so a newer version
 *   appended during a send stays. A lease that expires makes its row
 *   claimable again, so rows a dead process held are taken up.
 * - **One in-flight send per key, in order.** `claim` returns at most one row
 *   per key, only the oldest pending version of its key, and never while that
 *   version holds a live lease. It also holds a row whose `dependsOn` keys
 *   still have earlier versions pending. Rows come immediate lane first, then
 *   by due time, then by seq.
 * - **Coalescing keeps order and retries.** `supersede` drops only older,
 *   unleased, unordered versions; the survivor inherits their retry state
 *   (attempts, budget start, later due time) so the retry schedule carries on.
 * - **The dead-letter queue** keeps the version with its body or reference,
 *   is capped per scope (oldest dropped first) and counts what it dropped.
 * - **Idempotency keys** belong to a version: set once at append, kept by
 *   every retry, never reused. A dead letter retried is a new version (new seq,
 *   new key): the remote's final refusal means it applied nothing under the
 *   old key, and a server that replays answers by key (PROTOCOL.md keeps final
 *   4xx answers for 24 h) would only repeat that refusal.
 *
 * What it leaves out:
 * - No scheduling policy: it does not decide due times, backoff or when to
 *   coalesce; the caller passes them. It does not check digests.
 * - No content: file references are stored, never read; bytes are not hashed.
 * - The lock is advisory: `claim` does not check it (leases already keep
 *   claims apart); it exists so one process paces and sends from an outbox.
 *   Other processes may append while it is held.
 * - `ack` does not check the lease owner: a send that reached the remote is
 *   acknowledged even if its lease expired meanwhile. It returns false, and
 *   changes nothing, when the row is gone (already acked by another owner).
 * - No cross-scope listing, no garbage collection of `synced`, no
 *   cancellation: calls do not wait on anything but the store's own I/O.
 */
export interface OutboxStore extends AsyncDisposable {
  /** Adds a version; resolves with its row (seq and idempotency key set) once durable. */
  append(scope: OutboxScope, version: OutboxVersion): Promise<PendingRow>;
  /** Leases due rows whose lease is free or expired; see the class comment for which. */
  claim(scope: OutboxScope, options: ClaimOptions): Promise<PendingRow[]>;
  /** Pushes a live lease's expiry to now + leaseMs. False if `owner` does not hold it. */
  extendLease(
    scope: OutboxScope,
    key: string,
    seq: number,
    options: ExtendLeaseOptions,
  ): Promise<boolean>;
  /**
   * The remote has this version: deletes exactly (key, seq) and, in the same
   * transaction, upserts the key's synced row (null deletes it, for a
   * tombstone). False, with nothing changed, when the row is not pending.
   */
  ack(scope: OutboxScope, key: string, seq: number, synced: SyncedInput | null): Promise<boolean>;
  /** Drops the lease and sets when to try again. False if the row is gone or another owner's live lease holds it. */
  release(scope: OutboxScope, key: string, seq: number, options: ReleaseOptions): Promise<boolean>;
  /**
   * The newest wins: deletes the key's versions older than `seq` that are not
   * leased and not ordered, moving their retry state to `seq`. Returns how many went.
   */
  supersede(scope: OutboxScope, key: string, seq: number): Promise<number>;
  /** Moves the row, body or reference included, to the dead-letter queue. False if it is not pending. */
  deadLetter(
    scope: OutboxScope,
    key: string,
    seq: number,
    options: DeadLetterOptions,
  ): Promise<boolean>;
  /** Oldest first. */
  listDeadLetters(scope: OutboxScope, options?: ListDeadLettersOptions): Promise<DeadLetterRow[]>;
  /** Puts a dead letter back in `pending` as a new version (new seq and idempotency key), due now. */
  retryDeadLetter(scope: OutboxScope, seq: number): Promise<PendingRow | undefined>;
  /** Deletes dead letters; returns how many. The dropped count is not reset. */
  purgeDeadLetters(scope: OutboxScope, options?: PurgeDeadLettersOptions): Promise<number>;
  /** Every pending row, by seq (what a restarted engine hands back to its scheduler). */
  pendingEntries(scope: OutboxScope): AsyncIterable<PendingRow>;
  getSynced(scope: OutboxScope, key: string): Promise<SyncedRow | undefined>;
  /** Records a key's remote state without a send (a listing showed it); null forgets it. */
  setSynced(scope: OutboxScope, key: string, synced: SyncedInput | null): Promise<void>;
  /** Every synced row, by key. */
  syncedEntries(scope: OutboxScope): AsyncIterable<SyncedRow>;
  counts(scope: OutboxScope): Promise<OutboxCounts>;
  /** Saves the scheduler's pacing (its `snapshot()`), replacing what was saved. */
  savePacing(scope: OutboxScope, states: readonly GroupState[]): Promise<void>;
  loadPacing(scope: OutboxScope): Promise<GroupState[]>;
  /**
   * Takes the sender lock of this outbox. Rejects with a StateError naming the
   * holder when another process or tab (or another lock() here) holds it.
   */
  lock(owner: string): Promise<OutboxLock>;
  /** Releases the lock and resources; writes already accepted complete first. Idempotent. */
  close(): Promise<void>;
}
