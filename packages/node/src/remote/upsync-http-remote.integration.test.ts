// The upsync HTTP remote over the undici transport against the real reference server.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HttpError, NetworkError, ProtocolError, Stats, exponentialBackoff } from '@upsync/core';
import {
  composeTransport,
  UpsyncHttpRemote,
  type ComposeTransportOptions,
  type RemoteBody,
} from '@upsync/core';
import { seededRandom } from '@upsync/core/testing';
import { FaultInjector, SqliteStorage, TokenRegistry, UpsyncServer } from '@upsync/server';
import { UndiciTransport } from './undici-transport.ts';

const TOKEN = 'integration-token-p1-7f3a';
let dir: string;
let server: UpsyncServer;
let url: string;
let faults: FaultInjector;
const transports: UndiciTransport[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'upsync-remote-test-'));
  faults = new FaultInjector({ random: seededRandom(42) });
  server = new UpsyncServer({
    storage: new SqliteStorage({ dir, inlineMaxBytes: 1024 }),
    tokens: new TokenRegistry({ tokens: { [TOKEN]: ['p1'] } }),
    faults,
    requestLog: null,
  });
  ({ url } = await server.listen({ port: 0, host: '127.0.0.1' }));
});
afterEach(() => {
  faults.reset();
});
afterAll(async () => {
  await Promise.all(transports.map((t) => t.close()));
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

function body(text: string): RemoteBody {
  const bytes = new TextEncoder().encode(text);
  return {
    size: bytes.byteLength,
    digest: createHash('sha256').update(bytes).digest('hex'),
    contentType: 'text/plain',
    // Two chunks, so the body really streams.
    async *open() {
      await Promise.resolve();
      yield bytes.subarray(0, bytes.length >> 1);
      yield bytes.subarray(bytes.length >> 1);
    },
  };
}

let seq = 0;
const idem = (): string => `idem-${Date.now()}-${seq++}`;

function makeRemote(
  options: Partial<ComposeTransportOptions> = {},
  pageSize = 1000,
): { remote: UpsyncHttpRemote; stats: Stats } {
  const stats = new Stats();
  const undici = new UndiciTransport();
  transports.push(undici);
  const transport = composeTransport(undici.send, {
    stats,
    auth: { token: TOKEN },
    // Fast schedules: this is about behaviour, not timing.
    retry: {
      maxAttempts: 12,
      maxRetryAfterMs: 50,
      backoff: exponentialBackoff({ baseMs: 5, capMs: 50 }),
    },
    breaker: { openMs: 20, maxOpenMs: 50, maxRetryAfterMs: 50 },
    ...options,
  });
  return { remote: new UpsyncHttpRemote({ url, project: 'p1', transport, pageSize }), stats };
}

async function all<T>(source: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const value of source) out.push(value);
  return out;
}

describe('UpsyncHttpRemote against the reference server', () => {
  it('puts, stats, lists several pages, batches and deletes', async () => {
    const { remote, stats } = makeRemote({}, 2);
    const keys = ['rt/a', 'rt/b c', 'rt/ü/d', 'rt/e?#', 'rt/f'];
    for (const key of keys) {
      const result = await remote.put({
        key,
        body: body(`content of ${key}`),
        idempotencyKey: idem(),
      });
      expect(result).toMatchObject({
        created: true,
        unchanged: false,
        digest: body(`content of ${key}`).digest,
      });
    }
    const again = await remote.put({
      key: 'rt/a',
      body: body('content of rt/a'),
      idempotencyKey: idem(),
    });
    expect(again).toMatchObject({ created: false, unchanged: true });
    await expect(
      remote.put({ key: 'rt/a', body: body('x'), idempotencyKey: idem(), ifNoneMatch: '*' }),
    ).rejects.toSatisfy((e) => e instanceof HttpError && e.status === 412);

    const state = await remote.stat('rt/ü/d');
    expect(state).toMatchObject({
      key: 'rt/ü/d',
      digest: body('content of rt/ü/d').digest,
      size: 18,
    });
    expect(await remote.stat('rt/missing')).toBeNull();

    const listed = await all(remote.list({ prefix: 'rt/' }));
    expect(listed.map((s) => s.key).sort()).toEqual([...keys].sort());
    expect(stats.snapshot().requests.byMethod.GET?.total).toBe(3); // 5 items, 2 a page

    const batch = await remote.putBatch([
      { key: 'rt/batch/1', body: body('one'), idempotencyKey: idem() },
      { key: 'rt/batch/2', body: body('two'), idempotencyKey: idem() },
      { key: 'rt/a', body: body('changed'), idempotencyKey: idem() },
    ]);
    expect(batch.map((r) => r.ok && r.result.created)).toEqual([true, true, false]);
    expect((await remote.stat('rt/a'))?.digest).toBe(body('changed').digest);

    expect(await remote.delete('rt/a', { idempotencyKey: idem() })).toEqual({ existed: true });
    expect(await remote.delete('rt/a', { idempotencyKey: idem() })).toEqual({ existed: false });
    expect(await remote.stat('rt/a')).toBeNull();
    stats.checkInvariant();
  });

  it('gets every put through 429s with Retry-After, 503s and resets, counting retries', async () => {
    faults.configure({ share429: 0.15, share503: 0.1, shareReset: 0.1, retryAfterSeconds: 1 });
    const { remote, stats } = makeRemote();
    const keys = Array.from({ length: 40 }, (_, i) => `faulty/${String(i).padStart(2, '0')}`);
    const results = await Promise.all(
      keys.map((key) => remote.put({ key, body: body(`v1 ${key}`), idempotencyKey: idem() })),
    );
    expect(results.every((r) => r.digest.length === 64)).toBe(true);
    faults.reset();
    const listed = await all(remote.list({ prefix: 'faulty/' }));
    expect(listed.map((s) => [s.key, s.digest])).toEqual(
      keys.map((k) => [k, body(`v1 ${k}`).digest]),
    );
    const snapshot = stats.snapshot();
    expect(snapshot.retries).toBeGreaterThan(0);
    expect(snapshot.requests.byStatus['4xx']).toBeGreaterThan(0); // the 429s
    expect(snapshot.requests.byStatus['5xx']).toBeGreaterThan(0);
    expect(snapshot.requests.byStatus.network).toBeGreaterThan(0);
    expect(snapshot.requests.byMethod.PUT?.byStatus['2xx']).toBe(40);
    stats.checkInvariant();
  });

  it('refreshes a refused token once with getToken', async () => {
    let calls = 0;
    const { remote } = makeRemote({
      auth: {
        token: 'stale-token-0000',
        getToken: () => {
          calls++;
          return Promise.resolve(TOKEN);
        },
      },
    });
    await remote.put({ key: 'auth/a', body: body('a'), idempotencyKey: idem() });
    await remote.put({ key: 'auth/b', body: body('b'), idempotencyKey: idem() });
    expect(calls).toBe(1);
  });

  it('lets no token out: a 401 after the refresh, and resets past the budget', async () => {
    const { remote: refused } = makeRemote({
      auth: { token: 'bad-token-one-1111', getToken: () => Promise.resolve('bad-token-two-2222') },
    });
    const auth = await refused
      .put({ key: 'x', body: body('x'), idempotencyKey: idem() })
      .catch((e: unknown) => e);
    expect(auth).toMatchObject({ status: 401, serverCode: 'UNAUTHORIZED' });
    const shown = inspect(auth, { depth: 20, showHidden: true }) + JSON.stringify(auth);
    expect(shown).not.toContain('bad-token-one-1111');
    expect(shown).not.toContain('bad-token-two-2222');

    faults.configure({ shareReset: 1 });
    const { remote } = makeRemote({
      retry: { maxAttempts: 2, backoff: exponentialBackoff({ baseMs: 1, capMs: 2 }) },
    });
    const reset = await remote
      .put({ key: 'x', body: body('x'), idempotencyKey: idem() })
      .catch((e: unknown) => e);
    expect(reset).toBeInstanceOf(NetworkError);
    expect(inspect(reset, { depth: 20, showHidden: true }) + JSON.stringify(reset)).not.toContain(
      TOKEN,
    );
  });

  it('gives a ProtocolError for a malformed listing', async () => {
    const { remote } = makeRemote();
    await remote.put({ key: 'malformed/a', body: body('a'), idempotencyKey: idem() });
    faults.configure({ shareMalformedListing: 1 });
    await expect(all(remote.list({ prefix: 'malformed/' }))).rejects.toSatisfy(
      (e) => e instanceof ProtocolError && /not valid JSON/.test(e.message),
    );
  });
});
