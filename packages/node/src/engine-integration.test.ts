// The engine end to end: the SQLite outbox, the undici transport and the real
// reference server on 127.0.0.1, port 0.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  applyMiddleware,
  composeTransport,
  Engine,
  exitCode,
  exponentialBackoff,
  retryMiddleware,
  Stats,
  UpsyncHttpRemote,
} from '@upsync/core';
import { SqliteStorage, TokenRegistry, UpsyncServer } from '@upsync/server';
import { SqliteOutboxStore } from './outbox/sqlite-store.ts';
import { UndiciTransport } from './remote/undici-transport.ts';

const TOKEN = 'engine-integration-token-5d1e';
let dir: string;
let server: UpsyncServer;
let url: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'upsync-engine-test-'));
  server = new UpsyncServer({
    storage: new SqliteStorage({ dir: join(dir, 'server'), inlineMaxBytes: 1024 }),
    tokens: new TokenRegistry({ tokens: { [TOKEN]: ['p1'] } }),
    requestLog: null,
  });
  ({ url } = await server.listen({ port: 0, host: '127.0.0.1' }));
});

afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * One transport stack for the engine: puts, deletes and HEADs get one attempt
 * per engine attempt (`retry: false`), and only the listing goes through the
 * retry middleware, on top of the same limits and breaker.
 */
function makeRemotes(stats: Stats): {
  remote: UpsyncHttpRemote;
  listingRemote: UpsyncHttpRemote;
  close: () => Promise<void>;
} {
  const undici = new UndiciTransport();
  const transport = composeTransport(undici.send, {
    stats,
    auth: { token: TOKEN },
    retry: false,
  });
  const listingTransport = applyMiddleware(transport, [
    retryMiddleware({ stats, backoff: exponentialBackoff({ baseMs: 10, capMs: 100 }) }),
  ]);
  return {
    remote: new UpsyncHttpRemote({ url, project: 'p1', transport, pageSize: 100 }),
    listingRemote: new UpsyncHttpRemote({
      url,
      project: 'p1',
      transport: listingTransport,
      pageSize: 100,
    }),
    close: () => undici.close(),
  };
}

describe('Engine against the reference server', () => {
  it('sends a few hundred pushes after one listing; a second run sends nothing', async () => {
    const keys = Array.from(
      { length: 300 },
      (_, i) => `logs/session-${String(i).padStart(3, '0')}.jsonl`,
    );
    const scope = { remote: url, project: 'p1', principal: 'integration' };

    const run = async (): Promise<{
      report: Awaited<ReturnType<Engine['shutdown']>>;
      stats: Stats;
    }> => {
      const stats = new Stats();
      const store = new SqliteOutboxStore({ path: join(dir, 'state', 'outbox.db') });
      const { remote, listingRemote, close } = makeRemotes(stats);
      const engine = new Engine({ store, scope, remote, listingRemote, stats, concurrency: 16 });
      try {
        await engine.start();
        const listing = await engine.loadListing();
        expect(listing.listing).not.toBeNull();
        await Promise.all(keys.map((key) => engine.push(key, `content of ${key}\n`)));
        await engine.flush();
        const report = await engine.shutdown({ timeoutMs: 10_000 });
        return { report, stats };
      } finally {
        await close();
        await store.close();
      }
    };

    const first = await run();
    expect(first.report).toMatchObject({
      attempted: 300,
      created: 300,
      errored: 0,
      timedOut: 0,
      checked: true,
    });
    expect(exitCode(first.report)).toBe(0);
    const byMethod = first.report.requests.byMethod;
    expect(byMethod.GET?.total).toBe(1);
    expect(byMethod.HEAD).toBeUndefined();
    expect(byMethod.PUT?.total).toBe(300);
    first.stats.checkInvariant({ settled: true });

    const second = await run();
    expect(second.report).toMatchObject({ attempted: 300, skipped: 300, checked: true });
    expect(second.report.requests.byMethod.PUT).toBeUndefined();
    expect(exitCode(second.report)).toBe(0);
  });
});
