import { afterEach, describe, expect, it } from 'vitest';
import { CircuitOpenError, HttpError, NetworkError } from '../errors/upsync-error.ts';
import { MemoryOutboxStore } from '../outbox/memory-store.ts';
import type { OutboxScope, OutboxStore } from '../outbox/outbox-store.ts';
import { seededRandom } from '../random/random.ts';
import { MemoryRemote } from '../remote/memory-remote.ts';
import type { Remote } from '../remote/remote.ts';
import { ManualClock } from '../time/manual-clock.ts';
import { Engine, type EngineOptions } from './engine.ts';
import type { FileAccess, FileRef } from './engine-types.ts';
import { exitCode } from './exit-code.ts';
import { sha256Hex } from './version-body.ts';

const scope: OutboxScope = { remote: 'memory://remote', project: 'p1', principal: 'tester' };
let engines: Engine[] = [];

interface Setup {
  clock: ManualClock;
  store: MemoryOutboxStore;
  remote: MemoryRemote;
  engine: Engine;
  sends: { atMs: number; key: string; seq: number; attempt: number }[];
}

async function setup(
  options: Partial<EngineOptions> & { store?: OutboxStore; clock?: ManualClock } = {},
): Promise<Setup> {
  const clock = options.clock ?? new ManualClock();
  const store =
    (options.store as MemoryOutboxStore | undefined) ?? new MemoryOutboxStore({ clock });
  const remote = (options.remote as MemoryRemote | undefined) ?? new MemoryRemote();
  const engine = new Engine({
    random: seededRandom(7),
    logger: { warn: (message, details) => console.error(message, details) },
    ...options,
    store,
    scope,
    remote: options.remote ?? remote,
    clock,
  });
  engines.push(engine);
  const sends: Setup['sends'] = [];
  engine.on('sending', (e) => sends.push({ atMs: clock.now(), ...e }));
  await engine.start();
  return { clock, store, remote, engine, sends };
}

afterEach(async () => {
  for (const engine of engines) {
    await engine.shutdown({ timeoutMs: 0 });
    // The accounting invariant of shared/DESIGN.md, settled, after every test.
    engine.stats.checkInvariant({ settled: true });
  }
  engines = [];
});

/** Lets the engine finish what it is doing (Web Crypto digests resolve off the microtask queue). */
/**
 * Lets the engine's promise callbacks run, without moving the manual clock,
 * until `done()`. Some of that work is truly asynchronous (Web Crypto digests
 * run in a thread pool), so on a loaded machine it can take many turns: the
 * bound is generous wall time, not a count of turns. Time on the clock never
 * moves here, so no test outcome depends on the machine's speed.
 */
async function until(clock: ManualClock, done: () => boolean, boundMs = 10_000): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (!done() && Date.now() < deadline) await clock.settle();
  if (!done()) throw new Error('the engine did not get there');
}

async function pendingOf(
  store: OutboxStore,
): Promise<{ key: string; seq: number; attempts: number }[]> {
  const rows = [];
  for await (const row of store.pendingEntries(scope)) {
    rows.push({ key: row.key, seq: row.seq, attempts: row.attempts });
  }
  return rows;
}

describe('Engine', () => {
  it('runs the DESIGN debounce example: sends at t0, t10, t21 and t26', async () => {
    const { clock, remote, engine, sends } = await setup();
    const at = [0, 1, 2, 21, 22, 23];
    for (const [i, second] of at.entries()) {
      await clock.advanceTo(second * 1000);
      await engine.push('session.log', `change ${i + 1}`, { knownNew: true });
    }
    await clock.advanceTo(26_000);
    const report = await engine.shutdown({ timeoutMs: 5000 });
    expect(sends.map((s) => s.atMs)).toEqual([0, 10_000, 21_000, 26_000]);
    expect(remote.applied.map((a) => a.text)).toEqual([
      'change 1',
      'change 3',
      'change 4',
      'change 6',
    ]);
    expect(report).toMatchObject({
      attempted: 4,
      created: 1,
      updated: 3,
      coalesced: 2,
      checked: true,
    });
    expect(remote.callsOf('HEAD')).toEqual([]);
    expect(exitCode(report)).toBe(0);
  });

  it('coalesces a burst: older outbox rows are superseded and counted', async () => {
    const { clock, store, remote, engine } = await setup();
    for (let i = 1; i <= 5; i++) await engine.push('a', `v${i}`, { knownNew: true });
    await clock.settle();
    // v1 went at once; v2..v4 were replaced in the queue by v5.
    expect((await pendingOf(store)).map((r) => r.key)).toEqual(['a']);
    expect(engine.stats.snapshot()).toMatchObject({ coalesced: 3, attempted: 2 });
    await clock.advance(10_000);
    await until(clock, () => remote.applied.length === 2);
    expect(remote.applied.map((a) => a.text)).toEqual(['v1', 'v5']);
    expect(await pendingOf(store)).toEqual([]);
  });

  it('sends ordered pushes in order, never coalesced', async () => {
    const { remote, engine } = await setup({ settings: { leading: true, intervalMs: 0 } });
    await engine.push('doc', 'publish', { ordered: true, knownNew: true });
    await engine.push('doc', 'draft 1', { ordered: true, knownNew: true });
    await engine.push('doc', 'draft 2', { ordered: true, knownNew: true });
    await engine.flush();
    expect(remote.applied.map((a) => a.text)).toEqual(['publish', 'draft 1', 'draft 2']);
    expect(engine.stats.snapshot()).toMatchObject({ coalesced: 0, attempted: 3 });
  });

  it('holds a dependsOn item until its dependency is sent', async () => {
    const { clock, remote, engine, sends } = await setup();
    // The folder goes through the 2 s store-wide buffer of the batch lane.
    await engine.push('folder', 'folder meta', { lane: 'batch', knownNew: true });
    await engine.push('folder/item', 'item', { dependsOn: ['folder'], knownNew: true });
    await clock.advance(1000);
    expect(remote.applied).toEqual([]);
    await clock.advance(1000);
    await until(clock, () => remote.applied.length === 2);
    expect(remote.applied.map((a) => a.key)).toEqual(['folder', 'folder/item']);
    expect(sends.find((s) => s.key === 'folder/item')?.atMs).toBe(2000);
  });

  it('sends the immediate lane ahead of buffered changes, and its push can be awaited', async () => {
    const { clock, remote, engine } = await setup({ storeWide: true });
    for (let i = 0; i < 5; i++) await engine.push(`event/${i}`, `e${i}`, { knownNew: true });
    const receipt = await engine.push('session/ended', 'bye', {
      lane: 'immediate',
      knownNew: true,
    });
    const delivery = await receipt.delivered;
    expect(delivery).toMatchObject({ key: 'session/ended', outcome: 'created' });
    expect(remote.applied[0]?.key).toBe('session/ended');
    await clock.advance(5000);
    await until(clock, () => remote.applied.length === 6);
  });

  it('waits out a 429 Retry-After, then succeeds', async () => {
    const { clock, remote, engine } = await setup();
    remote.failNext('PUT', () => new HttpError(429, 'slow down', { retryAfterMs: 7000 }));
    await engine.push('k', 'v', { knownNew: true });
    await clock.advance(6999);
    expect(remote.applied).toEqual([]);
    expect((await engine.status()).retrying).toBe(1);
    await clock.advance(1);
    await until(clock, () => remote.applied.length === 1);
    expect(remote.applied.map((a) => a.text)).toEqual(['v']);
    expect(engine.stats.snapshot()).toMatchObject({ created: 1, retries: 1, backoffMs: 7000 });
  });

  it('times out after the retry budget; the row stays pending with its attempts', async () => {
    const { clock, store, remote, engine } = await setup({ attempts: 3 });
    remote.inject((call) => (call.method === 'PUT' ? new HttpError(503, 'down') : undefined));
    const outcomes: string[] = [];
    engine.on('outcome', (e) => outcomes.push(e.outcome));
    await engine.push('k', 'v', { knownNew: true });
    await clock.runAll();
    expect(outcomes).toEqual(['timedOut']);
    expect(remote.callsOf('PUT')).toHaveLength(3);
    expect(await pendingOf(store)).toMatchObject([{ key: 'k', attempts: 3 }]);
    const report = await engine.shutdown({ timeoutMs: 0 });
    expect(report).toMatchObject({ timedOut: 1, attempted: 1, checked: true });
    expect(exitCode(report)).toBe(1);
  });

  it('ends a version refused by an open breaker as timed out once the retry time is spent, using no attempt', async () => {
    const { clock, store, remote, engine } = await setup({ retryTimeMs: 10_000 });
    remote.inject((call) =>
      call.method === 'PUT' ? new CircuitOpenError('open', clock.now() + 3000) : undefined,
    );
    const outcomes: { atMs: number; outcome: string }[] = [];
    engine.on('outcome', (e) => outcomes.push({ atMs: clock.now(), outcome: e.outcome }));
    await engine.push('k', 'v', { knownNew: true });
    await until(clock, () => remote.calls.length === 1);
    for (let i = 0; i < 20 && outcomes.length === 0; i++) {
      await clock.advance(3000);
      await clock.settle();
    }
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]?.outcome).toBe('timedOut');
    expect(outcomes[0]?.atMs).toBeLessThanOrEqual(10_000);
    expect(await pendingOf(store)).toMatchObject([{ key: 'k', attempts: 0 }]);
  });

  it('sends a newer version in place of one waiting in backoff; the retry schedule carries on', async () => {
    const { clock, remote, engine, sends } = await setup();
    remote.failNext('PUT', () => new HttpError(503, 'busy', { retryAfterMs: 4000 }));
    await engine.push('k', 'v1', { knownNew: true });
    await clock.advance(1000);
    await engine.push('k', 'v2', { knownNew: true });
    await clock.advance(3000);
    await until(clock, () => remote.applied.length === 1);
    expect(remote.applied.map((a) => a.text)).toEqual(['v2']);
    expect(sends.map((s) => [s.atMs, s.attempt])).toEqual([
      [0, 1],
      [4000, 2],
    ]);
    expect(engine.stats.snapshot()).toMatchObject({ coalesced: 1, updated: 0, created: 1 });
  });

  it('dead-letters a 400 and completes the others', async () => {
    const { store, remote, engine } = await setup();
    remote.failNext('PUT', () => new HttpError(400, 'bad item', { serverCode: 'BAD_KEY' }), {
      key: 'bad',
    });
    for (const key of ['a', 'bad', 'c']) await engine.push(key, key, { knownNew: true });
    await engine.flush();
    expect(remote.keys()).toEqual(['a', 'c']);
    const dead = await store.listDeadLetters(scope);
    expect(dead).toMatchObject([{ key: 'bad', status: 400, attempts: 1 }]);
    const report = await engine.shutdown({ timeoutMs: 0 });
    expect(report).toMatchObject({ created: 2, errored: 1, deadLettered: 1 });
    expect(exitCode(report)).toBe(1);
  });

  it('pauses on 401 with every row pending and nothing dead-lettered; resume sends them', async () => {
    const { clock, store, remote, engine } = await setup();
    const off = remote.inject((c) => (c.method === 'PUT' ? new HttpError(401, 'no') : undefined));
    const paused: string[] = [];
    engine.on('paused', (p) => paused.push(p.reason));
    for (const key of ['a', 'b', 'c']) await engine.push(key, key, { knownNew: true });
    await engine.flush();
    await clock.settle();
    const status = await engine.status();
    expect(status).toMatchObject({ enabled: false, pending: 3, deadLetters: 0 });
    expect(status.paused?.message).toMatch(/refused the token/);
    expect(paused).toEqual(['auth']);
    expect(await store.listDeadLetters(scope)).toEqual([]);
    off();
    engine.resume();
    await engine.flush();
    await clock.settle();
    expect(remote.keys()).toEqual(['a', 'b', 'c']);
  });

  it('ends a paused command with everything timed out and pending', async () => {
    const { store, remote, engine } = await setup();
    remote.inject((c) => (c.method === 'PUT' ? new HttpError(403, 'forbidden') : undefined));
    for (const key of ['a', 'b']) await engine.push(key, key, { knownNew: true });
    await engine.flush();
    const report = await engine.shutdown({ timeoutMs: 1000 });
    expect(report).toMatchObject({ timedOut: 2, errored: 0, deadLettered: 0, checked: true });
    expect(report.paused?.reason).toBe('auth');
    expect(await pendingOf(store)).toHaveLength(2);
  });

  it('delivers a revert A, B, A as A, with three distinct idempotency keys', async () => {
    const { remote, engine } = await setup({ settings: { leading: true, intervalMs: 0 } });
    for (const text of ['A', 'B', 'A']) {
      await engine.push('doc', text, { knownNew: true });
      await engine.flush();
    }
    expect(remote.text('doc')).toBe('A');
    expect(remote.applied.map((a) => a.text)).toEqual(['A', 'B', 'A']);
    expect(new Set(remote.applied.map((a) => a.idempotencyKey)).size).toBe(3);
  });

  it('sends tombstones; a delete of an absent item is done', async () => {
    const { store, remote, engine } = await setup();
    await remote.seed('x', 'old');
    await engine.push('x', null);
    await engine.push('gone', 'ignored', { delete: true });
    await engine.flush();
    expect(remote.keys()).toEqual([]);
    expect(remote.callsOf('DELETE').map((c) => c.key)).toEqual(['x', 'gone']);
    expect(engine.stats.snapshot()).toMatchObject({ deleted: 2 });
    expect(await pendingOf(store)).toEqual([]);
  });

  it('skips by the listing, and checks with HEAD without one', async () => {
    const { remote, engine } = await setup({ settings: { leading: true, intervalMs: 0 } });
    await remote.seed('same', 'same');
    await remote.seed('other', 'old');
    const listing = await engine.loadListing();
    expect(listing.listing?.size).toBe(2);
    for (const key of ['same', 'other', 'new'])
      await engine.push(key, key === 'other' ? 'new' : key);
    await engine.push('absent', null);
    await engine.flush();
    expect(engine.stats.snapshot()).toMatchObject({ skipped: 2, updated: 1, created: 1 });
    expect(remote.callsOf('HEAD')).toEqual([]);
    expect(remote.callsOf('DELETE')).toEqual([]);
  });

  it('resends pending rows after a restart with the same idempotency key, applied once', async () => {
    const clock = new ManualClock();
    const store = new MemoryOutboxStore({ clock });
    const memory = new MemoryRemote();
    // The first process's PUT reaches the remote, but the answer never comes back.
    const hanging: Remote = {
      id: memory.id,
      list: (o) => memory.list(o),
      stat: (k, o) => memory.stat(k, o),
      delete: (k, o) => memory.delete(k, o),
      close: () => memory.close(),
      async put(request, options) {
        await memory.put(request, options);
        return new Promise((_, reject) => {
          options?.signal?.addEventListener('abort', () => reject(options.signal?.reason as Error));
        });
      },
    };
    const first = await setup({ clock, store, remote: hanging });
    const receipt = await first.engine.push('k', 'v1', { knownNew: true });
    await until(clock, () => memory.applied.length === 1);
    expect(memory.applied).toHaveLength(1);
    await first.engine.shutdown({ timeoutMs: 0 });
    expect(await pendingOf(store)).toMatchObject([{ key: 'k', seq: receipt.seq }]);

    // A remote whose HEAD lags behind its writes, so the version is sent again.
    const lagging: Remote = {
      id: memory.id,
      list: (o) => memory.list(o),
      stat: () => Promise.resolve(null),
      put: (r, o) => memory.put(r, o),
      delete: (k, o) => memory.delete(k, o),
      close: () => memory.close(),
    };
    const second = await setup({ clock, store, remote: lagging });
    await second.engine.flush();
    const puts = memory.callsOf('PUT');
    expect(puts.map((c) => c.idempotencyKey)).toEqual([
      receipt.idempotencyKey,
      receipt.idempotencyKey,
    ]);
    expect(memory.applied).toHaveLength(1);
    expect(await pendingOf(store)).toEqual([]);
    expect(second.engine.stats.snapshot()).toMatchObject({ created: 1, attempted: 1 });
  });

  it('takes up a row a dead process leased once the lease expires', async () => {
    const clock = new ManualClock();
    const store = new MemoryOutboxStore({ clock });
    const bytes = new TextEncoder().encode('content');
    await store.append(scope, {
      key: 'k',
      digest: await sha256Hex(bytes),
      size: bytes.byteLength,
      body: { type: 'bytes', bytes },
    });
    await store.claim(scope, { owner: 'dead', leaseMs: 30_000 });
    const { remote } = await setup({ clock, store });
    await clock.advance(29_999);
    expect(remote.callsOf('PUT')).toEqual([]);
    await clock.advance(1);
    await until(clock, () => remote.applied.length === 1);
  });

  it('shuts down after the timeout: what is in flight counts timed out and stays pending', async () => {
    const clock = new ManualClock();
    const memory = new MemoryRemote();
    const slow: Remote = {
      ...memory,
      id: memory.id,
      list: (o) => memory.list(o),
      stat: (k, o) => memory.stat(k, o),
      delete: (k, o) => memory.delete(k, o),
      close: () => memory.close(),
      put: (_request, options) =>
        new Promise((_, reject) => {
          options?.signal?.addEventListener('abort', () => reject(options.signal?.reason as Error));
        }),
    };
    const { store, engine } = await setup({ clock, remote: slow });
    await engine.push('k', 'v', { knownNew: true });
    await engine.push('queued', 'q', { lane: 'batch', knownNew: true });
    const stopping = engine.shutdown({ timeoutMs: 5000 });
    await clock.advance(4999);
    let done = false;
    void stopping.then(() => (done = true));
    await clock.settle();
    expect(done).toBe(false);
    await clock.advance(1);
    const report = await stopping;
    expect(report).toMatchObject({ timedOut: 2, checked: true });
    expect((await pendingOf(store)).map((r) => r.key).sort()).toEqual(['k', 'queued']);
    await expect(store.lock('next')).resolves.toBeDefined();
  });

  it('retries network failures and counts consecutive failures in the status', async () => {
    const { clock, remote, engine } = await setup();
    remote.failNext('PUT', () => new NetworkError('reset'), { times: 2 });
    await engine.push('k', 'v', { knownNew: true });
    await until(clock, () => remote.calls.length === 1);
    await clock.settle();
    expect((await engine.status()).consecutiveFailures).toBe(1);
    await clock.runAll();
    await until(clock, () => remote.applied.length === 1);
    const status = await engine.status();
    expect(status).toMatchObject({ consecutiveFailures: 0, pending: 0, retrying: 0 });
    expect(status.lastSyncAtMs).not.toBeNull();
    expect(remote.applied).toHaveLength(1);
  });

  it('requeues a file that changed while it was sent with its new content, never dead-lettered', async () => {
    const files = new Map<string, string>([['/data/log', 'first']]);
    const refOf = async (path: string): Promise<FileRef> => {
      const bytes = new TextEncoder().encode(files.get(path));
      return {
        type: 'file',
        path,
        size: bytes.byteLength,
        mtimeMs: 0,
        digest: await sha256Hex(bytes),
      };
    };
    const access: FileAccess = {
      open: (ref) => ({
        size: ref.size,
        digest: ref.digest,
        // Read when the send starts, as the folder source does.
        // eslint-disable-next-line @typescript-eslint/require-await
        async *open() {
          yield new TextEncoder().encode(files.get(ref.path));
        },
      }),
      refresh: (ref) => refOf(ref.path),
    };
    const { clock, store, remote, engine } = await setup({ files: access });
    const ref = await refOf('/data/log');
    files.set('/data/log', 'second, longer');
    await engine.push('log', ref, { knownNew: true });
    await until(clock, () => remote.applied.length === 1);
    expect(remote.text('log')).toBe('second, longer');
    expect(await store.listDeadLetters(scope)).toEqual([]);
    expect(await pendingOf(store)).toEqual([]);
    expect(engine.stats.snapshot()).toMatchObject({ created: 1, coalesced: 1, errored: 0 });
  });

  it('sends a new push in place of a version that timed out earlier in the command', async () => {
    const { clock, store, remote, engine } = await setup({
      attempts: 1,
      settings: { leading: true, intervalMs: 0 },
    });
    const off = remote.inject((c) =>
      c.method === 'PUT' ? new HttpError(502, 'bad gateway') : undefined,
    );
    await engine.push('k', 'v1', { knownNew: true });
    await until(clock, () => engine.stats.count('timedOut') === 1);
    off();
    await engine.push('k', 'v2', { knownNew: true });
    await engine.flush();
    expect(remote.applied.map((a) => a.text)).toEqual(['v2']);
    expect(await pendingOf(store)).toEqual([]);
    expect(engine.stats.snapshot()).toMatchObject({ attempted: 2, timedOut: 1, created: 1 });
  });
});

describe('Engine resweep', () => {
  it('sends a version timed out in an outage again once the remote is back; it counts once', async () => {
    const { clock, store, remote, engine } = await setup({
      attempts: 3,
      retryTimeMs: 10_000,
      resweepMs: 30_000,
    });
    const off = remote.inject((c) => (c.method === 'PUT' ? new HttpError(503, 'down') : undefined));
    const outcomes: { atMs: number; outcome: string }[] = [];
    engine.on('outcome', (e) => outcomes.push({ atMs: clock.now(), outcome: e.outcome }));
    await engine.push('k', 'v', { knownNew: true });
    await until(clock, () => remote.callsOf('PUT').length === 1);
    const advance = async (toMs: number): Promise<void> => {
      while (clock.now() < toMs) {
        await clock.advance(Math.min(1000, toMs - clock.now()));
        await clock.settle();
      }
    };
    await advance(29_000);
    expect(outcomes.map((o) => o.outcome)).toEqual(['timedOut']);
    expect(remote.callsOf('PUT')).toHaveLength(3);
    expect(engine.report()).toMatchObject({ attempted: 1, timedOut: 1, inProgress: 0 });
    // Still down at the first resweep: a fresh budget (3 more attempts), timed out once more.
    await advance(59_000);
    expect(remote.callsOf('PUT')).toHaveLength(6);
    expect(outcomes.map((o) => o.outcome)).toEqual(['timedOut', 'timedOut']);
    expect(engine.report()).toMatchObject({ attempted: 1, timedOut: 1, errors: [{ seq: 1 }] });
    off();
    await advance(60_000);
    await until(clock, () => remote.applied.length === 1);
    expect(outcomes.at(-1)).toEqual({ atMs: 60_000, outcome: 'created' });
    const keys = new Set(remote.callsOf('PUT').map((c) => c.idempotencyKey));
    expect(keys.size).toBe(1);
    expect(await pendingOf(store)).toEqual([]);
    const report = await engine.shutdown({ timeoutMs: 0 });
    expect(report).toMatchObject({ attempted: 1, created: 1, timedOut: 0, checked: true });
    expect(report.errors).toEqual([]);
    expect(exitCode(report)).toBe(0);
  });

  it('a pause holds the sends that were waiting for a worker slot, not only new ones', async () => {
    const memory = new MemoryRemote();
    let unblock: () => void = () => {};
    const blocked = new Promise<void>((resolve) => (unblock = resolve));
    let puts = 0;
    // No putBatch: each key goes alone, so the second and third wait for the one slot.
    const remote: Remote = {
      id: memory.id,
      close: () => memory.close(),
      list: (o) => memory.list(o),
      stat: (k, o) => memory.stat(k, o),
      delete: (...args) => memory.delete(...args),
      put: async (request, o) => {
        puts++;
        if (puts === 1) await blocked;
        return memory.put(request, o);
      },
    };
    const { clock, engine } = await setup({ remote, concurrency: 1 });
    for (const key of ['a', 'b', 'c']) await engine.push(key, key, { knownNew: true });
    await until(clock, () => puts === 1);
    engine.pause();
    unblock();
    await until(clock, () => memory.applied.length === 1);
    await clock.advance(60_000);
    await clock.settle();
    expect(puts).toBe(1);
    engine.resume();
    await until(clock, () => memory.applied.length === 3);
    expect(puts).toBe(3);
  });

  it('a host paused again and again (503 Retry-After) delays its queue only until the pause ends', async () => {
    const pauseEndsMs = 6_000;
    const { clock, remote, engine } = await setup({
      concurrency: 4,
      retryTimeMs: 120_000,
      attempts: 3,
      settings: { leading: true, intervalMs: 0 },
    });
    // Paused in 1 s steps, as a breaker middleware reports a 503's Retry-After each time.
    remote.inject((c) => {
      const now = clock.now();
      if (c.method !== 'PUT' || now >= pauseEndsMs) return undefined;
      return new CircuitOpenError(
        'paused',
        Math.min(pauseEndsMs, Math.floor(now / 1000) * 1000 + 1000),
      );
    });
    const keys = Array.from({ length: 12 }, (_, i) => `k${i}`);
    for (const key of keys) await engine.push(key, key, { knownNew: true });
    while (engine.stats.count('created') < keys.length && clock.now() < 60_000) {
      await clock.advance(50);
      await clock.settle();
    }
    expect(engine.stats.count('created')).toBe(keys.length);
    // Each waiter wakes at the pause's end plus a first-attempt jitter, never an exponent grown by refusals.
    expect(clock.now()).toBeLessThanOrEqual(pauseEndsMs + 1_000);
    // Nothing was resent: the refusals sent no request.
    expect(engine.stats.snapshot().retries).toBe(0);
  });

  it('sends each of many keys with one claim and no scan of the outbox (the cost stays linear)', async () => {
    const clock = new ManualClock();
    const store = new MemoryOutboxStore({ clock });
    let scans = 0;
    let claims = 0;
    const pendingEntries = store.pendingEntries.bind(store);
    store.pendingEntries = (s) => {
      scans++;
      return pendingEntries(s);
    };
    const claim = store.claim.bind(store);
    store.claim = (s, o) => {
      claims++;
      return claim(s, o);
    };
    const { remote, engine } = await setup({ clock, store });
    const scansAtStart = scans;
    for (let i = 0; i < 200; i++) await engine.push(`k${i}`, `v${i}`, { knownNew: true });
    await until(clock, () => remote.applied.length === 200);
    expect(claims).toBe(200);
    expect(scans).toBe(scansAtStart);
  });

  it('does not resweep while paused, and does once resumed', async () => {
    const { clock, remote, engine } = await setup({ attempts: 1, resweepMs: 30_000 });
    const off = remote.inject((c) => (c.method === 'PUT' ? new HttpError(503, 'down') : undefined));
    await engine.push('k', 'v', { knownNew: true });
    await until(clock, () => engine.stats.count('timedOut') === 1);
    off();
    engine.pause();
    await clock.advance(60_000);
    await clock.settle();
    expect(remote.callsOf('PUT')).toHaveLength(1);
    engine.resume();
    await clock.advance(30_000);
    await until(clock, () => remote.applied.length === 1);
    expect(engine.report()).toMatchObject({ attempted: 1, created: 1, timedOut: 0 });
  });

  it('sends one key as a probe while the breaker refuses; its arrival sweeps the rest at once', async () => {
    const { clock, remote, engine, sends } = await setup({
      retryTimeMs: 10_000,
      resweepMs: 30_000,
      settings: { leading: true, intervalMs: 0 },
    });
    const off = remote.inject((c) =>
      c.method === 'PUT' ? new CircuitOpenError('open', clock.now() + 20_000) : undefined,
    );
    for (const key of ['a', 'b']) await engine.push(key, key, { knownNew: true });
    await until(clock, () => engine.stats.count('timedOut') === 2);
    expect((await engine.status()).breaker).toBe('open');
    off();
    const log: string[] = [];
    engine.on('sending', (e) => log.push(`send ${e.key}`));
    engine.on('outcome', (e) => log.push(`${e.outcome} ${e.key}`));
    await clock.advance(30_000);
    await until(clock, () => remote.applied.length === 2);
    expect(log).toEqual(['send a', 'created a', 'send b', 'created b']);
    expect(sends.filter((s) => s.atMs === 30_000).map((s) => s.key)).toEqual(['a', 'b']);
    expect(engine.report()).toMatchObject({ attempted: 2, created: 2, timedOut: 0 });
  });

  it('is off by default', async () => {
    const { clock, remote, engine } = await setup({ attempts: 1 });
    const off = remote.inject((c) => (c.method === 'PUT' ? new HttpError(503, 'down') : undefined));
    await engine.push('k', 'v', { knownNew: true });
    await until(clock, () => engine.stats.count('timedOut') === 1);
    off();
    await clock.advance(600_000);
    await clock.settle();
    expect(remote.callsOf('PUT')).toHaveLength(1);
  });
});

describe('Engine batch lane', () => {
  async function syncedKeys(store: OutboxStore): Promise<string[]> {
    const keys = [];
    for await (const row of store.syncedEntries(scope)) keys.push(row.key);
    return keys.sort();
  }

  it('sends the buffered puts in one putBatch call: created, and unchanged as skipped', async () => {
    const { clock, store, remote, engine } = await setup();
    await remote.seed('b', 'same');
    await engine.push('a', 'A', { lane: 'batch', knownNew: true });
    await engine.push('b', 'same', { lane: 'batch', knownNew: true });
    await engine.push('c', 'C', { lane: 'batch', knownNew: true });
    await clock.advance(1999);
    expect(remote.calls).toEqual([]);
    await clock.advance(1);
    await until(clock, () => remote.callsOf('PUT').length === 3);
    await engine.flush();
    expect(remote.callsOf('BATCH')).toHaveLength(1);
    expect(remote.callsOf('PUT').every((c) => c.batched)).toBe(true);
    expect(remote.keys()).toEqual(['a', 'b', 'c']);
    expect(await pendingOf(store)).toEqual([]);
    expect(await syncedKeys(store)).toEqual(['a', 'b', 'c']);
    const report = await engine.shutdown({ timeoutMs: 0 });
    expect(report).toMatchObject({ attempted: 3, created: 2, skipped: 1, checked: true });
  });

  it('dead-letters an item refused with a 400 and retries a 503 alone, on its own schedule', async () => {
    const { clock, store, remote, engine, sends } = await setup();
    remote.failNext('PUT', () => new HttpError(400, 'bad item', { serverCode: 'BAD' }), {
      key: 'bad',
    });
    remote.failNext('PUT', () => new HttpError(503, 'busy', { retryAfterMs: 4000 }), {
      key: 'busy',
    });
    for (const key of ['ok', 'bad', 'busy']) {
      await engine.push(key, key, { lane: 'batch', knownNew: true });
    }
    await clock.advance(2000);
    await until(clock, () => remote.callsOf('PUT').length === 3);
    await clock.settle();
    expect(remote.keys()).toEqual(['ok']);
    expect(await store.listDeadLetters(scope)).toMatchObject([
      { key: 'bad', status: 400, attempts: 1 },
    ]);
    expect(await pendingOf(store)).toMatchObject([{ key: 'busy', attempts: 1 }]);
    await clock.advance(4000);
    await until(clock, () => remote.keys().length === 2);
    const alone = remote.callsOf('PUT', 'busy');
    expect(alone.map((c) => c.batched)).toEqual([true, false]);
    expect(sends.filter((s) => s.key === 'busy').map((s) => [s.atMs, s.attempt])).toEqual([
      [2000, 1],
      [6000, 2],
    ]);
    const report = await engine.shutdown({ timeoutMs: 0 });
    expect(report).toMatchObject({
      attempted: 3,
      created: 2,
      errored: 1,
      deadLettered: 1,
      retries: 1,
      checked: true,
    });
  });

  it('times out an item whose budget a batch failure spends; it stays pending', async () => {
    const { clock, store, remote, engine } = await setup({ attempts: 1 });
    remote.failNext('PUT', () => new HttpError(503, 'down'), { key: 'x' });
    for (const key of ['x', 'y']) await engine.push(key, key, { lane: 'batch', knownNew: true });
    await clock.advance(2000);
    await until(clock, () => remote.callsOf('PUT').length === 2);
    await clock.runAll();
    expect(remote.callsOf('PUT', 'x').map((c) => c.batched)).toEqual([true]);
    expect(await pendingOf(store)).toMatchObject([{ key: 'x', attempts: 1 }]);
    const report = await engine.shutdown({ timeoutMs: 0 });
    expect(report).toMatchObject({ attempted: 2, created: 1, timedOut: 1, checked: true });
  });

  it('sends each item alone when the batch request as a whole fails', async () => {
    const { clock, remote, engine } = await setup();
    remote.failNext('BATCH', () => new NetworkError('reset'));
    for (const key of ['m', 'n']) await engine.push(key, key, { lane: 'batch', knownNew: true });
    await clock.advance(2000);
    await until(clock, () => remote.keys().length === 2);
    expect(remote.callsOf('BATCH')).toHaveLength(1);
    expect(remote.callsOf('PUT').map((c) => [c.key, c.batched])).toEqual([
      ['m', false],
      ['n', false],
    ]);
    const report = await engine.shutdown({ timeoutMs: 0 });
    expect(report).toMatchObject({ attempted: 2, created: 2, checked: true });
  });

  it('keeps deletes, large bodies and remotes without putBatch on the per-item path', async () => {
    const { clock, remote, engine } = await setup();
    await remote.seed('gone', 'old');
    const large = 'x'.repeat(2 * 1024 * 1024);
    await engine.push('gone', null, { lane: 'batch', delete: true, knownNew: true });
    await engine.push('large', large, { lane: 'batch', knownNew: true });
    await engine.push('small-1', 's1', { lane: 'batch', knownNew: true });
    await engine.push('small-2', 's2', { lane: 'batch', knownNew: true });
    await clock.advance(2000);
    await until(clock, () => remote.keys().join() === 'large,small-1,small-2');
    expect(remote.callsOf('BATCH')).toHaveLength(1);
    expect(remote.callsOf('PUT').map((c) => [c.key, c.batched])).toEqual(
      expect.arrayContaining([
        ['large', false],
        ['small-1', true],
        ['small-2', true],
      ]),
    );
    expect(remote.callsOf('DELETE', 'gone')).toHaveLength(1);

    const memory = new MemoryRemote();
    const plain: Remote = {
      id: memory.id,
      list: (o) => memory.list(o),
      stat: (k, o) => memory.stat(k, o),
      put: (r, o) => memory.put(r, o),
      delete: (k, o) => memory.delete(k, o),
      close: () => memory.close(),
    };
    const other = await setup({ remote: plain });
    for (const key of ['p', 'q'])
      await other.engine.push(key, key, { lane: 'batch', knownNew: true });
    await other.clock.advance(2000);
    await until(other.clock, () => memory.keys().length === 2);
    expect(memory.callsOf('BATCH')).toEqual([]);
  });
});

describe('Engine leases', () => {
  it('extends the lease of a send that lasts three leases; no one else takes the row up', async () => {
    const clock = new ManualClock();
    const memory = new MemoryRemote();
    let putting = 0;
    const slow: Remote = {
      id: memory.id,
      list: (o) => memory.list(o),
      stat: (k, o) => memory.stat(k, o),
      delete: (k, o) => memory.delete(k, o),
      close: () => memory.close(),
      put: async (request, options) => {
        putting++;
        await clock.sleep(30_000, options?.signal);
        return memory.put(request, options);
      },
    };
    const { store, engine } = await setup({ clock, remote: slow, leaseMs: 10_000 });
    await engine.push('k', 'v', { knownNew: true });
    await until(clock, () => putting === 1);
    for (const atMs of [6_000, 11_000, 16_000, 21_000, 26_000, 29_999]) {
      await clock.advanceTo(atMs);
      await clock.settle();
      expect(await store.claim(scope, { owner: 'other', leaseMs: 10_000 })).toEqual([]);
    }
    await clock.advanceTo(30_000);
    await until(clock, () => memory.applied.length === 1);
    await engine.flush();
    expect(await pendingOf(store)).toEqual([]);
    const report = await engine.shutdown({ timeoutMs: 0 });
    expect(report).toMatchObject({ attempted: 1, created: 1, checked: true });
  });
});
