// The contract every OutboxStore passes (BullMQ's adapter-conformance idea):
// a store's own test file calls runOutboxConformance with a factory, and the
// same checks run against memory, SQLite, IndexedDB and whatever comes next.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ClosedError, StateError } from '../errors/upsync-error.ts';
import type { ManualClock } from '../time/manual-clock.ts';
import { compareClaimOrder, isLeased } from './outbox-checks.ts';
import {
  DEFAULT_DEAD_LETTER_CAP,
  type Lane,
  type OutboxScope,
  type OutboxStore,
  type OutboxVersion,
  type PendingRow,
} from './outbox-store.ts';

export interface OutboxStoreFixture {
  readonly store: OutboxStore;
  /** The clock the store was built with. */
  readonly clock: ManualClock;
  /**
   * Closes the store and opens it again on the same data, as a restarted
   * process would. Leave it out for a store that keeps nothing (memory).
   */
  readonly reopen?: () => Promise<OutboxStore>;
  /** Removes what the fixture made (temp folders); called after the store is closed. */
  readonly cleanup?: () => Promise<void>;
}

export interface MakeOutboxStoreOptions {
  /** Pass to the store; default its own (10,000). */
  readonly deadLetterCap?: number;
}

export interface OutboxConformanceOptions {
  /** fast-check runs of the model property; default 60. */
  readonly propertyRuns?: number;
  /**
   * Whether to check the default cap with 10,002 dead letters (default true).
   * Turn it off only for a second configuration of a store already checked.
   */
  readonly checkDefaultCap?: boolean;
  /** The store persists: its fixture has `reopen`, and the durability tests run. */
  readonly durable?: boolean;
}

export type MakeOutboxStore = (options: MakeOutboxStoreOptions) => Promise<OutboxStoreFixture>;

const A: OutboxScope = { remote: 'https://api.example', project: 'p1', principal: 'alice' };
const B: OutboxScope = { remote: 'https://api.example', project: 'p1', principal: 'bob' };
const C: OutboxScope = { remote: 'https://other.example', project: 'p1', principal: 'alice' };

const text = (value: string): Uint8Array => new TextEncoder().encode(value);

/** A put of `content` under `key`. */
function put(key: string, content: string, extra: Partial<OutboxVersion> = {}): OutboxVersion {
  const bytes = text(content);
  return {
    key,
    digest: `d:${content}`,
    size: bytes.byteLength,
    body: { type: 'bytes', bytes },
    contentType: 'text/plain',
    ...extra,
  };
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const rows: T[] = [];
  for await (const row of iterable) rows.push(row);
  return rows;
}

const seqs = (rows: readonly { seq: number }[]): number[] => rows.map((row) => row.seq);

const LEASE = { owner: 'w1', leaseMs: 30_000 } as const;

/** Runs the outbox store contract as a vitest `describe` block named `name`. */
export function runOutboxConformance(
  name: string,
  makeStore: MakeOutboxStore,
  options: OutboxConformanceOptions = {},
): void {
  const propertyRuns = options.propertyRuns ?? 60;

  /** Runs `body` with a fresh store, then closes it and cleans up, even when the test fails. */
  async function withStore(
    body: (fixture: OutboxStoreFixture & { current: () => OutboxStore }) => Promise<void>,
    storeOptions: MakeOutboxStoreOptions = {},
  ): Promise<void> {
    const fixture = await makeStore(storeOptions);
    let store = fixture.store;
    const reopen = fixture.reopen;
    try {
      await body({
        ...fixture,
        ...(reopen && {
          reopen: async () => {
            store = await reopen();
            return store;
          },
        }),
        current: () => store,
      });
    } finally {
      await store.close();
      await fixture.cleanup?.();
    }
  }

  describe(name, () => {
    describe('append', () => {
      it('assigns increasing seqs per scope and a fresh 128-bit idempotency key per version', () =>
        withStore(async ({ store, clock }) => {
          const a1 = await store.append(A, put('x', 'one'));
          const a2 = await store.append(A, put('x', 'two'));
          const b1 = await store.append(B, put('x', 'one'));
          expect(a2.seq).toBeGreaterThan(a1.seq);
          expect(b1.seq).toBeGreaterThanOrEqual(1);
          expect(a1.idempotencyKey).toMatch(/^[0-9a-f]{32}$/);
          expect(new Set([a1.idempotencyKey, a2.idempotencyKey, b1.idempotencyKey]).size).toBe(3);
          expect(a1).toMatchObject({
            key: 'x',
            kind: 'put',
            digest: 'd:one',
            size: 3,
            body: { type: 'bytes', bytes: text('one') },
            contentType: 'text/plain',
            lane: 'normal',
            ordered: false,
            dependsOn: [],
            attempts: 0,
            budgetStartedAtMs: null,
            nextAttemptAtMs: clock.now(),
            createdAtMs: clock.now(),
            leaseOwner: null,
            leaseExpiresAtMs: null,
            lastError: null,
          });
        }));

      it('keeps a caller idempotency key, file references and tombstones', () =>
        withStore(async ({ store }) => {
          const mine = await store.append(A, put('x', 'v', { idempotencyKey: 'k-123' }));
          expect(mine.idempotencyKey).toBe('k-123');
          const file = await store.append(A, {
            key: 'logs/a.jsonl',
            digest: 'sha256:abc',
            size: 1234,
            body: {
              type: 'file',
              path: '/data/logs/a.jsonl',
              size: 1234,
              mtimeMs: 1_700_000_000_123.5,
              digest: 'sha256:abc',
            },
          });
          expect(file.body).toEqual({
            type: 'file',
            path: '/data/logs/a.jsonl',
            size: 1234,
            mtimeMs: 1_700_000_000_123.5,
            digest: 'sha256:abc',
          });
          expect(file.contentType).toBeNull();
          const tomb = await store.append(A, { key: 'gone', kind: 'delete' });
          expect(tomb).toMatchObject({ kind: 'delete', digest: null, size: 0, body: null });
          const rows = await collect(store.pendingEntries(A));
          expect(seqs(rows)).toEqual([mine.seq, file.seq, tomb.seq]);
          expect(rows[1]).toEqual(file);
        }));

      it('stores a copy of the body bytes', () =>
        withStore(async ({ store }) => {
          const bytes = text('abc');
          await store.append(A, { key: 'x', digest: 'd', size: 3, body: { type: 'bytes', bytes } });
          bytes[0] = 0x7a;
          const [row] = await store.claim(A, LEASE);
          expect(row?.body).toEqual({ type: 'bytes', bytes: text('abc') });
        }));

      it('refuses bad versions and scopes with a TypeError that shows the value', () =>
        withStore(async ({ store }) => {
          await expect(store.append(A, put('', 'x'))).rejects.toThrow(/key.*""/);
          await expect(store.append(A, { key: 'x', size: 1 })).rejects.toThrow(TypeError);
          await expect(store.append(A, put('x', 'abc', { size: 4 }))).rejects.toThrow(/4/);
          await expect(
            store.append(A, { key: 'x', kind: 'delete', body: { type: 'bytes', bytes: text('') } }),
          ).rejects.toThrow(TypeError);
          await expect(
            store.append(A, put('x', 'v', { lane: 'fast' as unknown as Lane })),
          ).rejects.toThrow(/"fast"/);
          await expect(store.append(A, put('x', 'v', { idempotencyKey: 'a b' }))).rejects.toThrow(
            TypeError,
          );
          await expect(store.append({ ...A, principal: '' }, put('x', 'v'))).rejects.toThrow(
            /principal/,
          );
          expect((await store.counts(A)).pending).toBe(0);
        }));
    });

    describe('claim and ack', () => {
      it('ack deletes exactly the sent seq; a version pushed during the send stays', () =>
        withStore(async ({ store, clock }) => {
          const v1 = await store.append(A, put('x', 'one'));
          const [sent] = await store.claim(A, LEASE);
          expect(sent?.seq).toBe(v1.seq);
          expect(sent?.leaseOwner).toBe('w1');
          expect(sent?.leaseExpiresAtMs).toBe(clock.now() + 30_000);
          const v2 = await store.append(A, put('x', 'two'));
          await clock.advance(5);
          expect(await store.ack(A, 'x', v1.seq, { digest: 'd:one', size: 3, etag: '"e1"' })).toBe(
            true,
          );
          expect(seqs(await collect(store.pendingEntries(A)))).toEqual([v2.seq]);
          expect(await store.getSynced(A, 'x')).toEqual({
            key: 'x',
            digest: 'd:one',
            size: 3,
            etag: '"e1"',
            remoteMtimeMs: null,
            syncedAtMs: clock.now(),
          });
          // Acknowledging again (or a seq that is not pending) changes nothing.
          expect(await store.ack(A, 'x', v1.seq, { digest: 'd:zzz', size: 9 })).toBe(false);
          expect(await store.ack(A, 'y', v2.seq, { digest: 'd:zzz', size: 9 })).toBe(false);
          expect((await store.getSynced(A, 'x'))?.digest).toBe('d:one');
          expect(seqs(await store.claim(A, LEASE))).toEqual([v2.seq]);
        }));

      it('never returns two rows of one key, nor a later seq before an earlier one', () =>
        withStore(async ({ store }) => {
          const x1 = await store.append(A, put('x', '1'));
          const x2 = await store.append(A, put('x', '2'));
          const y1 = await store.append(A, put('y', '1'));
          const x3 = await store.append(A, put('x', '3'));
          const first = await store.claim(A, { ...LEASE, limit: 10 });
          expect(seqs(first)).toEqual([x1.seq, y1.seq]);
          expect(await store.claim(A, { ...LEASE, owner: 'w2', limit: 10 })).toEqual([]);
          await store.ack(A, 'x', x1.seq, { digest: 'd:1', size: 1 });
          expect(seqs(await store.claim(A, { ...LEASE, limit: 10 }))).toEqual([x2.seq]);
          // x2 failed and waits for a retry: x3 still may not overtake it.
          await store.release(A, 'x', x2.seq, {
            owner: 'w1',
            nextAttemptAtMs: Number.MAX_SAFE_INTEGER,
          });
          expect(await store.claim(A, { ...LEASE, limit: 10 })).toEqual([]);
          await store.deadLetter(A, 'x', x2.seq, { reason: 'bad', status: 400, attempts: 1 });
          expect(seqs(await store.claim(A, { ...LEASE, limit: 10 }))).toEqual([x3.seq]);
        }));

      it('hands out immediate first, then by due time, then by seq; honours limit and keys', () =>
        withStore(async ({ store, clock }) => {
          const now = clock.now();
          const late = await store.append(A, put('late', 'v', { nextAttemptAtMs: now + 10 }));
          const batch = await store.append(A, put('batch', 'v', { lane: 'batch' }));
          const normal = await store.append(A, put('normal', 'v'));
          const early = await store.append(A, put('early', 'v', { nextAttemptAtMs: now - 10 }));
          const hot = await store.append(A, put('hot', 'v', { lane: 'immediate' }));
          const future = await store.append(
            A,
            put('future', 'v', { nextAttemptAtMs: now + 60_000 }),
          );
          await clock.advance(10);
          const onlyTwo = await store.claim(A, { ...LEASE, limit: 2, keys: ['batch', 'late'] });
          expect(seqs(onlyTwo)).toEqual([late.seq, batch.seq]);
          const rest = await store.claim(A, { ...LEASE, limit: 10 });
          expect(seqs(rest)).toEqual([hot.seq, early.seq, normal.seq]);
          // `now` overrides the clock: the future row is due then (and every lease has expired).
          const later = await store.claim(A, { ...LEASE, limit: 10, now: now + 60_000 });
          expect(seqs(later)).toEqual([
            hot.seq,
            early.seq,
            normal.seq,
            late.seq,
            future.seq,
            batch.seq,
          ]);
        }));

      it('holds a row until the earlier versions of the keys it depends on are gone', () =>
        withStore(async ({ store }) => {
          const folder = await store.append(A, put('docs', 'folder'));
          const item = await store.append(A, put('docs/a', 'item', { dependsOn: ['docs'] }));
          await store.append(A, put('docs', 'folder again'));
          expect(seqs(await store.claim(A, { ...LEASE, limit: 10, keys: ['docs/a'] }))).toEqual([]);
          expect(seqs(await store.claim(A, { ...LEASE, limit: 10 }))).toEqual([folder.seq]);
          await store.ack(A, 'docs', folder.seq, { digest: 'd:folder', size: 6 });
          // The later version of `docs` was pushed after the item: it does not hold it.
          const next = await store.claim(A, { ...LEASE, limit: 10 });
          expect(seqs(next)).toContain(item.seq);
          expect(next.find((row) => row.seq === item.seq)?.dependsOn).toEqual(['docs']);
        }));

      it('acknowledging a tombstone with null forgets the synced row', () =>
        withStore(async ({ store }) => {
          await store.setSynced(A, 'x', { digest: 'd:1', size: 1 });
          const tomb = await store.append(A, { key: 'x', kind: 'delete' });
          await store.claim(A, LEASE);
          expect(await store.ack(A, 'x', tomb.seq, null)).toBe(true);
          expect(await store.getSynced(A, 'x')).toBeUndefined();
        }));
    });

    describe('leases', () => {
      it('expire, and the row is taken up again by another owner', () =>
        withStore(async ({ store, clock }) => {
          const v = await store.append(A, put('x', 'v'));
          await store.claim(A, { owner: 'dead', leaseMs: 1_000 });
          expect(await store.counts(A)).toMatchObject({ pending: 1, inFlight: 1 });
          await clock.advance(999);
          expect(await store.claim(A, { owner: 'w2', leaseMs: 1_000 })).toEqual([]);
          await clock.advance(1);
          expect(await store.counts(A)).toMatchObject({ pending: 1, inFlight: 0 });
          const [again] = await store.claim(A, { owner: 'w2', leaseMs: 1_000 });
          expect(again).toMatchObject({ seq: v.seq, leaseOwner: 'w2' });
          expect(again?.idempotencyKey).toBe(v.idempotencyKey);
        }));

      it('extendLease keeps a long send leased, for its holder only', () =>
        withStore(async ({ store, clock }) => {
          const v = await store.append(A, put('x', 'v'));
          await store.claim(A, { owner: 'w1', leaseMs: 1_000 });
          await clock.advance(900);
          expect(await store.extendLease(A, 'x', v.seq, { owner: 'w2', leaseMs: 1_000 })).toBe(
            false,
          );
          expect(await store.extendLease(A, 'x', v.seq, { owner: 'w1', leaseMs: 1_000 })).toBe(
            true,
          );
          await clock.advance(900);
          expect(await store.claim(A, { owner: 'w2', leaseMs: 1_000 })).toEqual([]);
          await clock.advance(100);
          expect(await store.extendLease(A, 'x', v.seq, { owner: 'w1', leaseMs: 1_000 })).toBe(
            false,
          );
        }));

      it('release drops the lease and schedules the retry', () =>
        withStore(async ({ store, clock }) => {
          const v = await store.append(A, put('x', 'v'));
          await store.claim(A, LEASE);
          expect(
            await store.release(A, 'x', v.seq, { owner: 'w2', nextAttemptAtMs: clock.now() }),
          ).toBe(false);
          const start = clock.now();
          expect(
            await store.release(A, 'x', v.seq, {
              owner: 'w1',
              nextAttemptAtMs: start + 2_000,
              attempts: 1,
              budgetStartedAtMs: start,
              lastError: 'HTTP 503',
            }),
          ).toBe(true);
          expect(await store.counts(A)).toMatchObject({ pending: 1, inFlight: 0 });
          expect(await store.claim(A, LEASE)).toEqual([]);
          await clock.advance(2_000);
          const [row] = await store.claim(A, LEASE);
          expect(row).toMatchObject({
            seq: v.seq,
            attempts: 1,
            budgetStartedAtMs: start,
            nextAttemptAtMs: start + 2_000,
            lastError: 'HTTP 503',
            idempotencyKey: v.idempotencyKey,
          });
          expect(await store.release(A, 'x', 999_999, { owner: 'w1', nextAttemptAtMs: 0 })).toBe(
            false,
          );
        }));
    });

    describe('supersede', () => {
      it('drops older unleased versions, keeps leased and ordered ones, and carries the retry on', () =>
        withStore(async ({ store, clock }) => {
          const inFlight = await store.append(A, put('x', '1'));
          await store.claim(A, LEASE);
          const ordered = await store.append(A, put('x', '2', { ordered: true }));
          const retried = await store.append(A, put('x', '3'));
          const queued = await store.append(A, put('x', '4'));
          const newest = await store.append(A, put('x', '5'));
          const other = await store.append(A, put('y', '1'));
          // `retried` failed once and waits in backoff.
          const start = clock.now();
          await store.release(A, 'x', retried.seq, {
            owner: 'w1',
            nextAttemptAtMs: start + 4_000,
            attempts: 2,
            budgetStartedAtMs: start - 1_000,
            lastError: 'HTTP 429',
          });
          expect(await store.supersede(A, 'x', newest.seq)).toBe(2);
          const rows = await collect(store.pendingEntries(A));
          expect(seqs(rows)).toEqual([inFlight.seq, ordered.seq, newest.seq, other.seq]);
          expect(rows.find((row) => row.seq === newest.seq)).toMatchObject({
            attempts: 2,
            budgetStartedAtMs: start - 1_000,
            nextAttemptAtMs: start + 4_000,
            lastError: 'HTTP 429',
          });
          expect(queued.seq).toBeLessThan(newest.seq);
          expect(await store.supersede(A, 'x', newest.seq)).toBe(0);
          expect(await store.supersede(A, 'x', 999_999)).toBe(0);
          // Once the lease expires, the stale in-flight version may go too.
          await clock.advance(30_000);
          expect(await store.supersede(A, 'x', newest.seq)).toBe(1);
          expect(seqs(await collect(store.pendingEntries(A)))).toEqual([
            ordered.seq,
            newest.seq,
            other.seq,
          ]);
        }));
    });

    describe('dead letters', () => {
      it('moves the row with its body, and a retry resends it as a new version', () =>
        withStore(async ({ store, clock }) => {
          const v = await store.append(A, put('x', 'payload'));
          const f = await store.append(A, {
            key: 'f',
            digest: 'd:f',
            size: 2,
            body: { type: 'file', path: '/a/f', size: 2, mtimeMs: 5, digest: 'd:f' },
          });
          await store.claim(A, { ...LEASE, limit: 2 });
          await clock.advance(7);
          expect(
            await store.deadLetter(A, 'x', v.seq, { reason: 'invalid', status: 400, attempts: 1 }),
          ).toBe(true);
          expect(
            await store.deadLetter(A, 'f', f.seq, { reason: 'conflict', status: 409, attempts: 3 }),
          ).toBe(true);
          expect(
            await store.deadLetter(A, 'x', v.seq, { reason: 'again', status: 400, attempts: 1 }),
          ).toBe(false);
          expect(await store.counts(A)).toEqual({
            pending: 0,
            inFlight: 0,
            deadLetters: 2,
            droppedDeadLetters: 0,
          });
          const dead = await store.listDeadLetters(A);
          expect(dead).toHaveLength(2);
          expect(dead[0]).toMatchObject({
            key: 'x',
            seq: v.seq,
            body: { type: 'bytes', bytes: text('payload') },
            idempotencyKey: v.idempotencyKey,
            reason: 'invalid',
            status: 400,
            attempts: 1,
            deadLetteredAtMs: clock.now(),
            createdAtMs: v.createdAtMs,
          });
          expect(dead[1]?.body).toEqual(f.body);
          expect(await store.listDeadLetters(A, { key: 'f' })).toHaveLength(1);
          expect(await store.listDeadLetters(A, { limit: 1 })).toHaveLength(1);

          const again = await store.retryDeadLetter(A, v.seq);
          expect(again).toMatchObject({
            key: 'x',
            body: { type: 'bytes', bytes: text('payload') },
            digest: v.digest,
            attempts: 0,
            nextAttemptAtMs: clock.now(),
            leaseOwner: null,
          });
          expect(again?.seq).toBeGreaterThan(f.seq);
          expect(again?.idempotencyKey).not.toBe(v.idempotencyKey);
          expect(await store.retryDeadLetter(A, v.seq)).toBeUndefined();
          expect(seqs(await store.claim(A, LEASE))).toEqual([again?.seq]);
          expect(seqs(await store.listDeadLetters(A))).toEqual([f.seq]);
          expect(await store.purgeDeadLetters(A, { seqs: [123_456] })).toBe(0);
          expect(await store.purgeDeadLetters(A)).toBe(1);
          expect((await store.counts(A)).deadLetters).toBe(0);
        }));

      it('is capped: the oldest are dropped and counted', () =>
        withStore(
          async ({ store }) => {
            const rows = [];
            for (let i = 0; i < 5; i++) rows.push(await store.append(A, put(`k${i}`, `${i}`)));
            for (const row of rows) {
              await store.deadLetter(A, row.key, row.seq, {
                reason: 'r',
                status: 422,
                attempts: 1,
              });
            }
            expect(seqs(await store.listDeadLetters(A))).toEqual(seqs(rows.slice(2)));
            expect(await store.counts(A)).toMatchObject({ deadLetters: 3, droppedDeadLetters: 2 });
            await store.purgeDeadLetters(A);
            expect(await store.counts(A)).toMatchObject({ deadLetters: 0, droppedDeadLetters: 2 });
          },
          { deadLetterCap: 3 },
        ));

      if (options.checkDefaultCap ?? true)
        it(`keeps ${DEFAULT_DEAD_LETTER_CAP} by default`, () =>
          withStore(async ({ store }) => {
            const total = DEFAULT_DEAD_LETTER_CAP + 2;
            const rows = await Promise.all(
              Array.from({ length: total }, (_, i) => store.append(A, put(`k${i}`, 'v'))),
            );
            await Promise.all(
              rows.map((row) =>
                store.deadLetter(A, row.key, row.seq, { reason: 'r', status: 400, attempts: 1 }),
              ),
            );
            expect(await store.counts(A)).toMatchObject({
              pending: 0,
              deadLetters: DEFAULT_DEAD_LETTER_CAP,
              droppedDeadLetters: 2,
            });
            const [oldest] = await store.listDeadLetters(A, { limit: 1 });
            expect(oldest?.seq).toBe(rows[2]?.seq);
          }));
    });

    describe('scopes', () => {
      it('are isolated: one principal never claims, acks or sees another one’s rows', () =>
        withStore(async ({ store }) => {
          const a = await store.append(A, put('x', 'alice'));
          await store.append(C, put('x', 'other remote'));
          expect(await store.claim(B, { ...LEASE, limit: 10 })).toEqual([]);
          expect(await store.ack(B, 'x', a.seq, { digest: 'd', size: 1 })).toBe(false);
          expect(await store.supersede(B, 'x', a.seq + 100)).toBe(0);
          expect(
            await store.deadLetter(B, 'x', a.seq, { reason: 'r', status: 400, attempts: 1 }),
          ).toBe(false);
          await store.setSynced(B, 'x', { digest: 'd:bob', size: 3 });
          await store.savePacing(B, [{ groupId: 'x', lastSendStartMs: 5 }]);
          expect(await store.getSynced(A, 'x')).toBeUndefined();
          expect(await store.loadPacing(A)).toEqual([]);
          expect(await store.counts(B)).toMatchObject({ pending: 0 });
          expect(await collect(store.pendingEntries(B))).toEqual([]);
          expect(seqs(await store.claim(A, { ...LEASE, limit: 10 }))).toEqual([a.seq]);
          expect(await store.claim(C, { ...LEASE, limit: 10 })).toHaveLength(1);
        }));
    });

    describe('synced and pacing', () => {
      it('upserts synced rows and lists them by key', () =>
        withStore(async ({ store, clock }) => {
          await store.setSynced(A, 'b', { digest: 'd:b', size: 2, etag: 'e', remoteMtimeMs: 77 });
          await store.setSynced(A, 'a', { digest: 'd:a', size: 1 });
          await clock.advance(10);
          const v = await store.append(A, put('b', 'new'));
          await store.claim(A, LEASE);
          await store.ack(A, 'b', v.seq, {
            digest: 'd:new',
            size: 3,
            etag: '"2"',
            remoteMtimeMs: 9,
          });
          await store.setSynced(A, 'c', { digest: 'd:c', size: 3 });
          await store.setSynced(A, 'c', null);
          expect(await collect(store.syncedEntries(A))).toEqual([
            {
              key: 'a',
              digest: 'd:a',
              size: 1,
              etag: null,
              remoteMtimeMs: null,
              syncedAtMs: 0 + clock.now() - 10,
            },
            {
              key: 'b',
              digest: 'd:new',
              size: 3,
              etag: '"2"',
              remoteMtimeMs: 9,
              syncedAtMs: clock.now(),
            },
          ]);
        }));

      it('round-trips the scheduler pacing', () =>
        withStore(async ({ store }) => {
          expect(await store.loadPacing(A)).toEqual([]);
          const states = [
            { groupId: 'a', lastSendStartMs: 1_000 },
            { groupId: '*store*', lastSendStartMs: null },
          ];
          await store.savePacing(A, states);
          expect(await store.loadPacing(A)).toEqual(states);
          await store.savePacing(A, [states[0]!]);
          expect(await store.loadPacing(A)).toEqual([states[0]]);
          await expect(store.savePacing(A, [{ groupId: 1 } as never])).rejects.toThrow(TypeError);
        }));
    });

    describe('lock and close', () => {
      it('lets one sender hold the lock; others may still append', () =>
        withStore(async ({ store }) => {
          const lock = await store.lock('run-1');
          expect(lock.owner).toBe('run-1');
          await expect(store.lock('run-2')).rejects.toThrow(StateError);
          await store.append(A, put('x', 'still accepted'));
          await lock.release();
          await lock.release();
          const second = await store.lock('run-2');
          await second[Symbol.asyncDispose]();
        }));

      it('refuses calls after close', () =>
        withStore(async ({ store }) => {
          await store.close();
          await expect(store.append(A, put('x', 'v'))).rejects.toThrow(ClosedError);
          await expect(store.claim(A, LEASE)).rejects.toThrow(ClosedError);
          await store.close();
        }));
    });

    // Only stores that persist: a memory store has nothing to reopen.
    if (options.durable)
      describe('durability', () => {
        it('keeps everything across a reopen, and never reuses a seq', async () => {
          await withStore(async ({ store, clock, reopen }) => {
            const kept = await store.append(A, put('x', 'one', { lane: 'immediate' }));
            const leased = await store.append(
              A,
              put('y', 'two', { ordered: true, dependsOn: ['x'] }),
            );
            const file = await store.append(A, {
              key: 'z',
              digest: 'd:z',
              size: 9,
              body: { type: 'file', path: '/p/z', size: 9, mtimeMs: 3.25, digest: 'd:z' },
            });
            const top = await store.append(A, put('w', 'top'));
            await store.claim(A, { owner: 'w1', leaseMs: 60_000, keys: ['x'] });
            await store.release(A, 'x', kept.seq, {
              owner: 'w1',
              nextAttemptAtMs: clock.now() + 5,
              attempts: 1,
              budgetStartedAtMs: clock.now(),
              lastError: 'reset',
            });
            await store.claim(A, { owner: 'w1', leaseMs: 60_000, keys: ['z'] });
            const dead = await store.append(A, put('d', 'dead'));
            await store.deadLetter(A, 'd', dead.seq, { reason: 'bad', status: 400, attempts: 1 });
            await store.deadLetter(A, 'w', top.seq, { reason: 'bad', status: 400, attempts: 1 });
            await store.purgeDeadLetters(A, { seqs: [top.seq] });
            await store.setSynced(A, 's', { digest: 'd:s', size: 1, etag: 'e', remoteMtimeMs: 2 });
            await store.savePacing(A, [{ groupId: 'x', lastSendStartMs: 42 }]);
            const before = {
              pending: await collect(store.pendingEntries(A)),
              synced: await collect(store.syncedEntries(A)),
              dead: await store.listDeadLetters(A),
              counts: await store.counts(A),
              pacing: await store.loadPacing(A),
            };
            expect(before.pending).toHaveLength(3);
            const lock = await store.lock('run-1');
            await lock.release();

            const again = await reopen!();
            expect({
              pending: await collect(again.pendingEntries(A)),
              synced: await collect(again.syncedEntries(A)),
              dead: await again.listDeadLetters(A),
              counts: await again.counts(A),
              pacing: await again.loadPacing(A),
            }).toEqual(before);
            expect(before.pending.find((row) => row.seq === file.seq)?.leaseOwner).toBe('w1');
            expect(before.pending.find((row) => row.seq === leased.seq)?.dependsOn).toEqual(['x']);
            const next = await again.append(A, put('n', 'new'));
            expect(next.seq).toBeGreaterThan(top.seq);
            const lock2 = await again.lock('run-2');
            await lock2.release();
          });
        });
      });

    describe('model', () => {
      it('matches a simple model under random interleavings', async () => {
        await fc.assert(
          fc.asyncProperty(commandsArbitrary, async (commands) => {
            await withStore(async ({ store, clock }) => {
              await runModel(store, clock, commands);
            });
          }),
          { numRuns: propertyRuns },
        );
      });
    });
  });
}

// ---------------------------------------------------------------------------
// The model: the contract written as plainly as possible, over an array.

type Command =
  | { op: 'append'; scope: number; key: number; lane: Lane; ordered: boolean; delayMs: number }
  | {
      op: 'claim';
      scope: number;
      owner: number;
      limit: number;
      leaseMs: number;
      keyed: boolean;
      key: number;
    }
  | { op: 'ack'; scope: number; pick: number }
  | { op: 'release'; scope: number; pick: number; owner: number; delayMs: number }
  | { op: 'supersede'; scope: number; pick: number }
  | { op: 'deadLetter'; scope: number; pick: number }
  | { op: 'advance'; ms: number };

const SCOPES = [A, B];
const KEYS = ['a', 'b', 'c'];
const OWNERS = ['w1', 'w2'];

const commandArbitrary: fc.Arbitrary<Command> = fc.oneof(
  // Weighted so the interesting cases (versions piling up behind a claim) come often.
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('append' as const),
      scope: fc.nat(1),
      key: fc.nat(2),
      lane: fc.constantFrom<Lane>('immediate', 'normal', 'batch'),
      ordered: fc.boolean(),
      delayMs: fc.constantFrom(0, 0, 50, 500),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('claim' as const),
      scope: fc.nat(1),
      owner: fc.nat(1),
      limit: fc.integer({ min: 1, max: 4 }),
      leaseMs: fc.constantFrom(100, 1_000),
      keyed: fc.boolean(),
      key: fc.nat(2),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant('ack' as const), scope: fc.nat(1), pick: fc.nat(20) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('release' as const),
      scope: fc.nat(1),
      pick: fc.nat(20),
      owner: fc.nat(1),
      delayMs: fc.constantFrom(0, 200),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('supersede' as const),
      scope: fc.nat(1),
      pick: fc.nat(20),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('deadLetter' as const),
      scope: fc.nat(1),
      pick: fc.nat(20),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('advance' as const),
      ms: fc.constantFrom(1, 99, 100, 600, 1_000),
    }),
  },
);

/** Long enough runs for versions to pile up behind claims and leases to expire. */
const commandsArbitrary = fc.array(commandArbitrary, { minLength: 1, maxLength: 60, size: 'max' });

interface ModelRow {
  key: string;
  seq: number;
  lane: Lane;
  ordered: boolean;
  nextAttemptAtMs: number;
  leaseOwner: string | null;
  leaseExpiresAtMs: number | null;
  attempts: number;
}

interface ModelScope {
  rows: ModelRow[];
  dead: number[];
  synced: Map<string, string>;
}

function modelClaim(
  scope: ModelScope,
  owner: string,
  limit: number,
  leaseMs: number,
  now: number,
  keys?: string[],
): ModelRow[] {
  const picked: ModelRow[] = [];
  const seen = new Set<string>();
  const heads: ModelRow[] = [];
  for (const row of [...scope.rows].sort((a, b) => a.seq - b.seq)) {
    if (seen.has(row.key)) continue;
    seen.add(row.key);
    heads.push(row);
  }
  for (const row of heads.sort(compareClaimOrder)) {
    if (picked.length === limit) break;
    if (keys && !keys.includes(row.key)) continue;
    if (row.nextAttemptAtMs > now || isLeased(row, now)) continue;
    picked.push(row);
  }
  for (const row of picked) {
    row.leaseOwner = owner;
    row.leaseExpiresAtMs = now + leaseMs;
  }
  return picked;
}

async function runModel(
  store: OutboxStore,
  clock: ManualClock,
  commands: readonly Command[],
): Promise<void> {
  const model: ModelScope[] = SCOPES.map(() => ({ rows: [], dead: [], synced: new Map() }));
  /** A row of the scope to act on: a pending one, or (past the end) a seq that is not pending. */
  const target = (
    m: ModelScope,
    pick: number,
  ): { key: string; seq: number; row: ModelRow | undefined } => {
    const row = m.rows[pick % (m.rows.length + 1)];
    return row
      ? { key: row.key, seq: row.seq, row }
      : { key: 'a', seq: 10_000 + pick, row: undefined };
  };
  for (const command of commands) {
    const now = clock.now();
    if (command.op === 'advance') {
      await clock.advance(command.ms);
      continue;
    }
    const scope = SCOPES[command.scope]!;
    const m = model[command.scope]!;
    switch (command.op) {
      case 'append': {
        const row = await store.append(
          scope,
          put(KEYS[command.key]!, 'v', {
            lane: command.lane,
            ordered: command.ordered,
            nextAttemptAtMs: now + command.delayMs,
          }),
        );
        m.rows.push({
          key: row.key,
          seq: row.seq,
          lane: command.lane,
          ordered: command.ordered,
          nextAttemptAtMs: now + command.delayMs,
          leaseOwner: null,
          leaseExpiresAtMs: null,
          attempts: 0,
        });
        break;
      }
      case 'claim': {
        const owner = OWNERS[command.owner]!;
        const keys = command.keyed ? [KEYS[command.key]!] : undefined;
        const got = await store.claim(scope, {
          owner,
          leaseMs: command.leaseMs,
          limit: command.limit,
          ...(keys && { keys }),
        });
        const want = modelClaim(m, owner, command.limit, command.leaseMs, now, keys);
        expect(seqs(got)).toEqual(seqs(want));
        break;
      }
      case 'ack': {
        const { key, seq, row } = target(m, command.pick);
        expect(await store.ack(scope, key, seq, { digest: `d${seq}`, size: 1 })).toBe(
          row !== undefined,
        );
        if (row) {
          m.rows = m.rows.filter((r) => r !== row);
          m.synced.set(key, `d${seq}`);
        }
        break;
      }
      case 'release': {
        const { key, seq, row } = target(m, command.pick);
        const owner = OWNERS[command.owner]!;
        const ok = row !== undefined && (!isLeased(row, now) || row.leaseOwner === owner);
        const attempts = (row?.attempts ?? 0) + 1;
        expect(
          await store.release(scope, key, seq, {
            owner,
            nextAttemptAtMs: now + command.delayMs,
            attempts,
          }),
        ).toBe(ok);
        if (ok && row) {
          row.leaseOwner = null;
          row.leaseExpiresAtMs = null;
          row.nextAttemptAtMs = now + command.delayMs;
          row.attempts = attempts;
        }
        break;
      }
      case 'supersede': {
        const { key, seq, row } = target(m, command.pick);
        const gone = row
          ? m.rows.filter((r) => r.key === key && r.seq < seq && !r.ordered && !isLeased(r, now))
          : [];
        expect(await store.supersede(scope, key, seq)).toBe(gone.length);
        if (row) {
          for (const r of gone) {
            if (r.attempts === 0) continue;
            row.attempts = Math.max(row.attempts, r.attempts);
            row.nextAttemptAtMs = Math.max(row.nextAttemptAtMs, r.nextAttemptAtMs);
          }
          m.rows = m.rows.filter((r) => !gone.includes(r));
        }
        break;
      }
      case 'deadLetter': {
        const { key, seq, row } = target(m, command.pick);
        expect(
          await store.deadLetter(scope, key, seq, { reason: 'r', status: 400, attempts: 1 }),
        ).toBe(row !== undefined);
        if (row) {
          m.rows = m.rows.filter((r) => r !== row);
          m.dead.push(seq);
        }
        break;
      }
    }
  }
  const now = clock.now();
  for (const [index, scope] of SCOPES.entries()) {
    const m = model[index]!;
    const rows: PendingRow[] = await collect(store.pendingEntries(scope));
    expect(
      rows.map(
        ({ key, seq, lane, ordered, nextAttemptAtMs, leaseOwner, leaseExpiresAtMs, attempts }) => ({
          key,
          seq,
          lane,
          ordered,
          nextAttemptAtMs,
          leaseOwner,
          leaseExpiresAtMs,
          attempts,
        }),
      ),
    ).toEqual([...m.rows].sort((a, b) => a.seq - b.seq));
    expect(seqs(await store.listDeadLetters(scope))).toEqual(m.dead);
    expect(await store.counts(scope)).toEqual({
      pending: m.rows.length,
      inFlight: m.rows.filter((row) => isLeased(row, now)).length,
      deadLetters: m.dead.length,
      droppedDeadLetters: 0,
    });
    const synced = await collect(store.syncedEntries(scope));
    expect(new Map(synced.map((row) => [row.key, row.digest]))).toEqual(m.synced);
  }
}
