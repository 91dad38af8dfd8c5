// What every outbox store shares: argument checks (a TypeError that shows the
// bad value), defaults, the claim order and the retry state a superseding
// version inherits. Kept here so every store behaves the same to the letter.
import { assertFiniteNumber, assertInteger, assertPositive } from '../validate.ts';
import type {
  ClaimOptions,
  DeadLetterOptions,
  Lane,
  ListDeadLettersOptions,
  OutboxScope,
  OutboxVersion,
  PendingBody,
  PendingRow,
  ReleaseOptions,
  SyncedInput,
  VersionKind,
} from './outbox-store.ts';

export const LANES: readonly Lane[] = ['immediate', 'normal', 'batch'];

/** A lane's place in the claim order: lower goes first. */
export function laneRank(lane: Lane): number {
  return LANES.indexOf(lane);
}

function show(value: unknown): string {
  try {
    return typeof value === 'string'
      ? JSON.stringify(value)
      : (JSON.stringify(value) ?? String(value));
  } catch {
    return Object.prototype.toString.call(value);
  }
}

function assertString(name: string, value: unknown, allowEmpty = false): asserts value is string {
  if (typeof value !== 'string' || (!allowEmpty && value.length === 0)) {
    throw new TypeError(`${name} must be a non-empty string, got ${show(value)}`);
  }
}

function assertNullableString(name: string, value: unknown): asserts value is string | null {
  if (value !== null && typeof value !== 'string') {
    throw new TypeError(`${name} must be a string or null, got ${show(value)}`);
  }
}

export function checkScope(scope: OutboxScope): void {
  if (typeof scope !== 'object' || scope === null) {
    throw new TypeError(`scope must be { remote, project, principal }, got ${show(scope)}`);
  }
  assertString('scope.remote', scope.remote);
  assertString('scope.project', scope.project);
  assertString('scope.principal', scope.principal);
}

/** One string per scope, for maps keyed by scope. */
export function scopeId(scope: OutboxScope): string {
  return JSON.stringify([scope.remote, scope.project, scope.principal]);
}

export function checkKey(key: unknown): asserts key is string {
  assertString('key', key);
}

export function checkSeq(seq: unknown): asserts seq is number {
  assertInteger('seq', seq, 1);
}

export function checkOwner(owner: unknown): asserts owner is string {
  assertString('owner', owner);
}

/** Visible ASCII, 1 to 255 characters: what the protocol's Idempotency-Key header allows. */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/** A random 128-bit key as 32 hex digits, from Web Crypto (in browsers, workers and Node). */
export function randomIdempotencyKey(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  let hex = '';
  for (const byte of bytes) hex += byte.toString(16).padStart(2, '0');
  return hex;
}

/** A version with every default filled in and checked, ready to store under a seq. */
export interface NormalizedVersion {
  readonly key: string;
  readonly kind: VersionKind;
  readonly digest: string | null;
  readonly size: number;
  readonly body: PendingBody | null;
  readonly idempotencyKey: string;
  readonly contentType: string | null;
  readonly lane: Lane;
  readonly ordered: boolean;
  readonly dependsOn: readonly string[];
  readonly nextAttemptAtMs: number;
}

function checkBody(body: unknown, size: number): PendingBody {
  if (typeof body !== 'object' || body === null) {
    throw new TypeError(`body must be { type: 'bytes' | 'file', ... }, got ${show(body)}`);
  }
  const b = body as PendingBody;
  if (b.type === 'bytes') {
    if (!(b.bytes instanceof Uint8Array)) {
      throw new TypeError(`body.bytes must be a Uint8Array, got ${show(b.bytes)}`);
    }
    if (b.bytes.byteLength !== size) {
      throw new TypeError(
        `size must equal body.bytes.byteLength (${b.bytes.byteLength}), got ${size}`,
      );
    }
    return { type: 'bytes', bytes: b.bytes.slice() };
  }
  if (b.type === 'file') {
    assertString('body.path', b.path);
    assertInteger('body.size', b.size);
    assertFiniteNumber('body.mtimeMs', b.mtimeMs);
    assertString('body.digest', b.digest);
    return { type: 'file', path: b.path, size: b.size, mtimeMs: b.mtimeMs, digest: b.digest };
  }
  throw new TypeError(
    `body.type must be 'bytes' or 'file', got ${show((b as { type?: unknown }).type)}`,
  );
}

export interface NormalizeVersionContext {
  readonly nowMs: number;
  readonly newIdempotencyKey: () => string;
}

/** Checks a version and fills its defaults (the body's bytes are copied). */
export function normalizeVersion(
  version: OutboxVersion,
  context: NormalizeVersionContext,
): NormalizedVersion {
  if (typeof version !== 'object' || version === null) {
    throw new TypeError(`version must be an object, got ${show(version)}`);
  }
  checkKey(version.key);
  const kind = version.kind ?? 'put';
  if (kind !== 'put' && kind !== 'delete') {
    throw new TypeError(`kind must be 'put' or 'delete', got ${show(kind)}`);
  }
  let digest: string | null = null;
  let size = 0;
  let body: PendingBody | null = null;
  if (kind === 'put') {
    assertString('digest', version.digest);
    assertInteger('size', version.size);
    digest = version.digest;
    size = version.size;
    body = checkBody(version.body, size);
  } else {
    if (version.body != null)
      throw new TypeError(`a delete has no body, got ${show(version.body)}`);
    if (version.digest != null)
      throw new TypeError(`a delete has no digest, got ${show(version.digest)}`);
    if (version.size !== undefined && version.size !== 0) {
      throw new TypeError(`a delete has size 0, got ${show(version.size)}`);
    }
  }
  const idempotencyKey = version.idempotencyKey ?? context.newIdempotencyKey();
  if (typeof idempotencyKey !== 'string' || !IDEMPOTENCY_KEY.test(idempotencyKey)) {
    throw new TypeError(
      `idempotencyKey must be 1 to 255 visible ASCII characters, got ${show(idempotencyKey)}`,
    );
  }
  const contentType = version.contentType ?? null;
  assertNullableString('contentType', contentType);
  const lane = version.lane ?? 'normal';
  if (!LANES.includes(lane)) {
    throw new TypeError(`lane must be one of ${LANES.join(', ')}, got ${show(lane)}`);
  }
  const ordered = version.ordered ?? false;
  if (typeof ordered !== 'boolean')
    throw new TypeError(`ordered must be a boolean, got ${show(ordered)}`);
  const dependsOn = version.dependsOn ?? [];
  if (!Array.isArray(dependsOn) || !dependsOn.every((k) => typeof k === 'string' && k !== '')) {
    throw new TypeError(`dependsOn must be an array of non-empty keys, got ${show(dependsOn)}`);
  }
  const nextAttemptAtMs = version.nextAttemptAtMs ?? context.nowMs;
  assertFiniteNumber('nextAttemptAtMs', nextAttemptAtMs);
  return {
    key: version.key,
    kind,
    digest,
    size,
    body,
    idempotencyKey,
    contentType,
    lane,
    ordered,
    dependsOn: [...new Set(dependsOn)],
    nextAttemptAtMs,
  };
}

export interface NormalizedClaim {
  readonly owner: string;
  readonly leaseMs: number;
  readonly limit: number;
  readonly now: number;
  readonly keys: readonly string[] | undefined;
}

export function normalizeClaim(options: ClaimOptions, nowMs: number): NormalizedClaim {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`claim options must be { owner, leaseMs, ... }, got ${show(options)}`);
  }
  checkOwner(options.owner);
  assertPositive('leaseMs', options.leaseMs);
  const limit = options.limit ?? 1;
  assertInteger('limit', limit, 1);
  const now = options.now ?? nowMs;
  assertFiniteNumber('now', now);
  if (
    options.keys !== undefined &&
    (!Array.isArray(options.keys) || !options.keys.every((k) => typeof k === 'string'))
  ) {
    throw new TypeError(`keys must be an array of keys, got ${show(options.keys)}`);
  }
  return {
    owner: options.owner,
    leaseMs: options.leaseMs,
    limit,
    now,
    keys: options.keys === undefined ? undefined : [...new Set(options.keys)],
  };
}

export function checkRelease(options: ReleaseOptions): void {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(
      `release options must be { owner, nextAttemptAtMs, ... }, got ${show(options)}`,
    );
  }
  checkOwner(options.owner);
  assertFiniteNumber('nextAttemptAtMs', options.nextAttemptAtMs);
  if (options.attempts !== undefined) assertInteger('attempts', options.attempts);
  if (options.budgetStartedAtMs != null)
    assertFiniteNumber('budgetStartedAtMs', options.budgetStartedAtMs);
  if (options.lastError !== undefined) assertNullableString('lastError', options.lastError);
}

export function checkDeadLetter(options: DeadLetterOptions): void {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(
      `dead-letter options must be { reason, status, attempts }, got ${show(options)}`,
    );
  }
  assertString('reason', options.reason, true);
  if (options.status !== null) assertInteger('status', options.status, 100);
  assertInteger('attempts', options.attempts);
}

export function checkSynced(synced: SyncedInput | null): void {
  if (synced === null) return;
  if (typeof synced !== 'object') {
    throw new TypeError(`synced must be { digest, size, ... } or null, got ${show(synced)}`);
  }
  assertNullableString('synced.digest', synced.digest);
  assertInteger('synced.size', synced.size);
  if (synced.etag != null) assertNullableString('synced.etag', synced.etag);
  if (synced.remoteMtimeMs != null)
    assertFiniteNumber('synced.remoteMtimeMs', synced.remoteMtimeMs);
}

export function checkLeaseMs(leaseMs: unknown): asserts leaseMs is number {
  assertPositive('leaseMs', leaseMs);
}

/** The order claim hands rows out in: immediate lane first, then due time, then seq. */
export function compareClaimOrder(
  a: Pick<PendingRow, 'lane' | 'nextAttemptAtMs' | 'seq'>,
  b: Pick<PendingRow, 'lane' | 'nextAttemptAtMs' | 'seq'>,
): number {
  return (
    laneRank(a.lane) - laneRank(b.lane) || a.nextAttemptAtMs - b.nextAttemptAtMs || a.seq - b.seq
  );
}

/** True when a lease is live at `now` (an expired lease counts as free). */
export function isLeased(
  row: Pick<PendingRow, 'leaseOwner' | 'leaseExpiresAtMs'>,
  now: number,
): boolean {
  return row.leaseOwner !== null && row.leaseExpiresAtMs !== null && row.leaseExpiresAtMs > now;
}

export type RetryState = Pick<
  PendingRow,
  'attempts' | 'budgetStartedAtMs' | 'nextAttemptAtMs' | 'lastError'
>;

/**
 * The retry state a surviving version takes from the versions it superseded:
 * a newer change replaces one waiting in backoff and the retry schedule
 * carries on (most attempts, earliest budget start, latest due time). Versions
 * never attempted carry nothing.
 */
export function inheritRetryState(
  survivor: RetryState,
  superseded: readonly RetryState[],
): RetryState {
  let { attempts, budgetStartedAtMs, nextAttemptAtMs, lastError } = survivor;
  for (const row of superseded) {
    if (row.attempts === 0) continue;
    attempts = Math.max(attempts, row.attempts);
    if (row.budgetStartedAtMs !== null) {
      budgetStartedAtMs =
        budgetStartedAtMs === null
          ? row.budgetStartedAtMs
          : Math.min(budgetStartedAtMs, row.budgetStartedAtMs);
    }
    nextAttemptAtMs = Math.max(nextAttemptAtMs, row.nextAttemptAtMs);
    // The survivor's own error wins; else the newest superseded one's.
    if (survivor.lastError === null && row.lastError !== null) lastError = row.lastError;
  }
  return { attempts, budgetStartedAtMs, nextAttemptAtMs, lastError };
}

/** Checks a dead-letter cap option (default given by the caller). */
export function checkDeadLetterCap(cap: unknown): asserts cap is number {
  if (cap !== Infinity) assertInteger('deadLetterCap', cap, 0);
}

/** Checks the scheduler pacing saved with a scope. */
export function checkPacing(states: unknown): void {
  if (
    !Array.isArray(states) ||
    !states.every(
      (state: unknown) =>
        typeof state === 'object' &&
        state !== null &&
        typeof (state as { groupId?: unknown }).groupId === 'string' &&
        ((state as { lastSendStartMs?: unknown }).lastSendStartMs === null ||
          Number.isFinite((state as { lastSendStartMs?: unknown }).lastSendStartMs)),
    )
  ) {
    throw new TypeError(
      `pacing must be an array of { groupId, lastSendStartMs }, got ${show(states)}`,
    );
  }
}

/** Runs `operation` now and hands its result or its throw back as a promise, so bad arguments reject. */
export function settle<T>(operation: () => T): Promise<T> {
  try {
    return Promise.resolve(operation());
  } catch (error) {
    return Promise.reject(error instanceof Error ? error : new Error(String(error)));
  }
}

/** Checks purgeDeadLetters' `seqs`. */
export function checkSeqList(seqs: unknown): asserts seqs is readonly number[] | undefined {
  if (seqs === undefined) return;
  if (!Array.isArray(seqs) || !seqs.every((seq) => Number.isInteger(seq))) {
    throw new TypeError(`seqs must be an array of seqs, got ${show(seqs)}`);
  }
}

export function checkListDeadLetters(options: ListDeadLettersOptions): void {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`options must be { key?, limit? }, got ${show(options)}`);
  }
  if (options.key !== undefined) checkKey(options.key);
  if (options.limit !== undefined) assertInteger('limit', options.limit);
}
