// The real CLI killed with SIGKILL at random moments against the reference
// server, then run to completion: nothing lost, no version applied twice.
// Also state databases a crash leaves: a stale lease, an unfinished transaction.
import { createHash } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteOutboxStore } from '../outbox/sqlite-store.ts';
import { CLI_OWNER, principalOf } from './open-engine.ts';
import { getItem, manyFiles, tempDir, writeFiles } from './e2e-helpers.ts';
import {
  appliedTwice,
  spawnCli,
  spawnOpenTransaction,
  startCrashServer,
  type CrashServer,
} from './crash-helpers.ts';

const RUNS = Number(process.env['UPSYNC_CRASH_RUNS'] ?? 30);
let server: CrashServer;
const cleanup: string[] = [];

beforeAll(async () => {
  server = await startCrashServer();
});

afterAll(async () => {
  await server.close();
  for (const dir of cleanup) rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A tiny LCG: the same kill schedule on every run, so a failure can be replayed. */
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

function folder(prefix: string): { dir: string; state: string } {
  const dir = tempDir(`upsync-crash-${prefix}-`);
  const state = tempDir(`upsync-crash-${prefix}-state-`);
  cleanup.push(dir, state);
  return { dir, state };
}

function syncArgs(dir: string, state: string): string[] {
  return ['sync', dir, '--remote', server.url, '--project', 'p1', '--state', state, '--json'];
}

async function expectServerHas(dir: string, keys: readonly string[]): Promise<number> {
  let lost = 0;
  for (const key of keys) {
    const content = readFileSync(join(dir, ...key.split('/')), 'utf8');
    const remote = await getItem(server.url, key);
    if (remote !== content) lost++;
    expect(remote, key).toBe(content);
  }
  return lost;
}

describe('sync and run killed with SIGKILL', () => {
  it('the applied-twice check finds a key applied twice and ignores failures', () => {
    const write = (idempotencyKey: string, status: number) => ({
      itemKey: 'k',
      idempotencyKey,
      status,
    });
    expect(appliedTwice([write('a', 201), write('b', 200), write('a', 200)])).toEqual(['a']);
    expect(appliedTwice([write('a', 503), write('a', 201)])).toEqual([]);
  });

  it(`leaves every file's newest content after ${RUNS} kills, each Idempotency-Key applied once`, async () => {
    const { dir, state } = folder('kills');
    const files = manyFiles(150, 'kill/f-');
    const keys = Object.keys(files);
    writeFiles(dir, files);
    const random = lcg(7);
    let syncKills = 0;
    let runKills = 0;
    let edits = 0;
    const edit = (): void => {
      // New content for a few files: new versions that overlap with ones a killed
      // process may have left half sent.
      for (let i = 0; i < 3; i++) {
        const key = keys[Math.floor(random() * keys.length)]!;
        writeFiles(dir, { [key]: `{"edit":${++edits}}\n` }, false);
      }
    };
    // Rounds that run to their end do not count: RUNS kills in all.
    for (let round = 0; syncKills + runKills < RUNS; round++) {
      edit();
      const asRun = round % 4 === 3;
      const args = asRun
        ? ['run', dir, '--remote', server.url, '--project', 'p1', '--state', state]
        : syncArgs(dir, state);
      const child = spawnCli(asRun ? [...args, '--debounce', '200ms'] : args);
      if (!asRun && round % 10 === 9) {
        // Now and then one runs to its end between the kills.
        expect(await child.exited).toBe(0);
        continue;
      }
      const delayMs = 50 + Math.floor(random() * 750);
      if (asRun) {
        await sleep(delayMs / 2);
        edit();
        await sleep(delayMs / 2);
      } else {
        await sleep(delayMs);
      }
      child.kill();
      // A child that finished before the kill exits 0; a killed one has no code.
      expect([0, null]).toContain(await child.exited);
      if (asRun) runKills++;
      else syncKills++;
    }

    const final = spawnCli(syncArgs(dir, state));
    expect(await final.exited).toBe(0);
    expect(final.output.stderr).not.toMatch(/\n\s+at /);
    const lost = await expectServerHas(dir, keys);
    // The storage records each write it applied (a replay is not one), so a key
    // applied twice would show here whatever status the client saw.
    const twice = appliedTwice(server.applied);
    expect(twice).toEqual([]);
    expect(server.applied.length).toBeGreaterThanOrEqual(150);
    expect(syncKills + runKills).toBe(RUNS);
    console.log(
      `crash: ${syncKills + runKills} kills (${syncKills} sync, ${runKills} run), ${lost} lost, ${twice.length} applied twice`,
    );
  }, 120_000);
});

describe('state a crash leaves behind', () => {
  const scope = (): { remote: string; project: string; principal: string } => ({
    remote: server.url,
    project: 'p1',
    principal: principalOf(),
  });

  it('sends a row whose lease a killed CLI left, without waiting the lease out', async () => {
    const { dir, state } = folder('lease');
    const content = 'leased by a dead process\n';
    writeFiles(dir, { 'lease/a.txt': content });
    const store = new SqliteOutboxStore({ path: join(state, 'outbox.db') });
    const idempotencyKey = 'a'.repeat(32);
    try {
      await store.append(scope(), {
        key: 'lease/a.txt',
        digest: createHash('sha256').update(content).digest('hex'),
        size: Buffer.byteLength(content),
        body: { type: 'bytes', bytes: new TextEncoder().encode(content) },
        idempotencyKey,
      });
      const claimed = await store.claim(scope(), { owner: CLI_OWNER, leaseMs: 3_600_000 });
      expect(claimed.map((row) => row.key)).toEqual(['lease/a.txt']);
    } finally {
      await store.close();
    }

    const child = spawnCli(syncArgs(dir, state));
    expect(await child.exited).toBe(0);
    expect(await getItem(server.url, 'lease/a.txt')).toBe(content);
    // The leased row itself went out, under its own Idempotency-Key.
    expect(server.applied.map((write) => write.idempotencyKey)).toContain(idempotencyKey);
    const after = new SqliteOutboxStore({ path: join(state, 'outbox.db') });
    try {
      expect((await after.counts(scope())).pending).toBe(0);
    } finally {
      await after.close();
    }
  }, 30_000);

  it('opens a database with a transaction killed before COMMIT; the uncommitted row is gone', async () => {
    const { dir, state } = folder('txn');
    writeFiles(dir, { 'txn/one.txt': 'one' });
    expect(await spawnCli(syncArgs(dir, state)).exited).toBe(0);

    const dbPath = join(state, 'outbox.db');
    const open = spawnOpenTransaction(dbPath, 'txn/ghost.txt');
    const deadline = Date.now() + 20_000;
    while (!open.output.stdout.includes('ready') && Date.now() < deadline) await sleep(20);
    expect(open.output.stderr).toBe('');
    expect(open.output.stdout).toContain('ready');
    open.kill();
    expect(await open.exited).toBeNull();

    writeFileSync(join(dir, 'txn', 'two.txt'), 'two');
    const child = spawnCli(syncArgs(dir, state));
    expect(await child.exited).toBe(0);
    expect(child.output.stderr).not.toMatch(/\n\s+at /);
    expect(await getItem(server.url, 'txn/one.txt')).toBe('one');
    expect(await getItem(server.url, 'txn/two.txt')).toBe('two');
    expect(await getItem(server.url, 'txn/ghost.txt')).toBeNull();
    const store = new SqliteOutboxStore({ path: dbPath });
    try {
      const keys: string[] = [];
      for await (const row of store.pendingEntries(scope())) keys.push(row.key);
      expect(keys).toEqual([]);
    } finally {
      await store.close();
    }
  }, 30_000);
});
