import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { StateError } from '@upsync/core';
import { runOutboxConformance } from '@upsync/core/conformance';
import { ManualClock } from '@upsync/core/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteOutboxStore } from './sqlite-store.ts';

const root = mkdtempSync(join(tmpdir(), 'upsync-outbox-'));
let folders = 0;
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A fresh folder under the test's temp root. */
function folder(): string {
  return join(root, `s${++folders}`);
}

const scope = { remote: 'https://api.example', project: 'p', principal: 'alice' };

for (const groupCommit of [true, false]) {
  runOutboxConformance(
    `SqliteOutboxStore conformance (groupCommit: ${groupCommit})`,
    (options) => {
      const dir = folder();
      const path = join(dir, 'outbox.db');
      const clock = new ManualClock({ startMs: 1_700_000_000_000 });
      const open = (): SqliteOutboxStore =>
        new SqliteOutboxStore({ path, clock, groupCommit, ...options });
      let store = open();
      return Promise.resolve({
        store,
        clock,
        reopen: async () => {
          await store.close();
          store = open();
          return store;
        },
        cleanup: () => Promise.resolve(rmSync(dir, { recursive: true, force: true })),
      });
    },
    // Each run opens a database file; fewer runs keep the suite quick. The second
    // configuration runs every check but the 20,000-transaction one.
    { propertyRuns: groupCommit ? 40 : 15, checkDefaultCap: groupCommit, durable: true },
  );
}

describe('SqliteOutboxStore', () => {
  it('checks its options with a TypeError that shows the bad value', () => {
    expect(() => new SqliteOutboxStore({ path: '' })).toThrow(/""/);
    expect(
      () => new SqliteOutboxStore({ path: join(folder(), 'x.db'), deadLetterCap: -2 }),
    ).toThrow(/-2/);
    expect(
      () => new SqliteOutboxStore({ path: join(folder(), 'x.db'), synchronous: 'off' as 'full' }),
    ).toThrow(/"off"/);
  });

  it('uses WAL and synchronous=FULL, and records its schema version', async () => {
    const path = join(folder(), 'outbox.db');
    const store = new SqliteOutboxStore({ path });
    await store.append(scope, { key: 'x', kind: 'delete' });
    await store.close();
    const db = new DatabaseSync(path);
    expect(db.prepare('PRAGMA journal_mode').get()).toEqual({ journal_mode: 'wal' });
    expect(db.prepare('PRAGMA user_version').get()).toEqual({ user_version: 1 });
    const plan = db
      .prepare(
        `EXPLAIN QUERY PLAN SELECT * FROM pending AS p
         WHERE p.scope_id = 1 AND p.next_attempt_ms <= 5
           AND (p.lease_expires_ms IS NULL OR p.lease_expires_ms <= 5)
           AND NOT EXISTS (SELECT 1 FROM pending AS e
                           WHERE e.scope_id = p.scope_id AND e.key = p.key AND e.seq < p.seq)
         ORDER BY p.lane, p.next_attempt_ms, p.seq`,
      )
      .all()
      .map((row) => String((row as { detail: string }).detail))
      .join('\n');
    // The claim query (as in the store) walks pending_due in order and probes pending_key.
    expect(plan).toMatch(/pending_due/);
    expect(plan).toMatch(/pending_key/);
    expect(plan).not.toMatch(/TEMP B-TREE/);
    db.close();
  });

  it('keeps an empty body, and bodies of every byte value, exactly', async () => {
    const store = new SqliteOutboxStore({ path: join(folder(), 'outbox.db') });
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    await store.append(scope, {
      key: 'e',
      digest: 'd:e',
      size: 0,
      body: { type: 'bytes', bytes: new Uint8Array(0) },
    });
    await store.append(scope, {
      key: 'b',
      digest: 'd:b',
      size: 256,
      body: { type: 'bytes', bytes: all },
    });
    const rows = await store.claim(scope, { owner: 'w', leaseMs: 1_000, limit: 2 });
    expect(rows.map((row) => row.body)).toEqual([
      { type: 'bytes', bytes: new Uint8Array(0) },
      { type: 'bytes', bytes: all },
    ]);
    await store.close();
  });

  it('appends that arrive together share one transaction, each resolved once durable', async () => {
    const path = join(folder(), 'outbox.db');
    const store = new SqliteOutboxStore({ path });
    const rows = await Promise.all(
      Array.from({ length: 500 }, (_, i) =>
        store.append(scope, {
          key: `k${i % 50}`,
          digest: `d${i}`,
          size: 1,
          body: { type: 'bytes', bytes: new Uint8Array([i % 256]) },
        }),
      ),
    );
    expect(rows.map((row) => row.seq)).toEqual(rows.map((_, i) => i + 1));
    // A second connection (another process would see the same) reads them all: committed.
    const reader = new DatabaseSync(path, { readOnly: true });
    expect(reader.prepare('SELECT count(*) AS n FROM pending').get()).toEqual({ n: 500 });
    reader.close();
    await store.close();
  });

  it('one failing operation of a group commit fails alone', async () => {
    const store = new SqliteOutboxStore({ path: join(folder(), 'outbox.db') });
    const results = await Promise.allSettled([
      store.append(scope, { key: 'a', kind: 'delete' }),
      store.append(scope, { key: 'b', kind: 'delete', idempotencyKey: 'bad key' }),
      store.append(scope, { key: 'c', kind: 'delete' }),
    ]);
    expect(results.map((result) => result.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((await store.counts(scope)).pending).toBe(2);
    await store.close();
  });

  describe('unusable state', () => {
    it('a corrupt file is a StateError that says what to do', async () => {
      const dir = folder();
      const path = join(dir, 'outbox.db');
      await new SqliteOutboxStore({ path }).close();
      writeFileSync(path, 'not a database. '.repeat(512));
      rmSync(`${path}-wal`, { force: true });
      rmSync(`${path}-shm`, { force: true });
      let error: unknown;
      try {
        new SqliteOutboxStore({ path });
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(StateError);
      expect((error as Error).message).toContain(path);
      expect((error as Error).message).toMatch(/corrupt or not an upsync outbox; move it aside/);
    });

    it('another application’s database, or a newer schema, is refused', async () => {
      const dir = folder();
      const other = join(dir, 'other.db');
      const path = join(dir, 'outbox.db');
      await new SqliteOutboxStore({ path }).close();
      const plain = new DatabaseSync(other);
      plain.exec('CREATE TABLE notes (x)');
      plain.close();
      expect(() => new SqliteOutboxStore({ path: other })).toThrow(/not an upsync outbox/);
      const db = new DatabaseSync(path);
      db.exec('PRAGMA user_version = 99');
      db.close();
      expect(() => new SqliteOutboxStore({ path })).toThrow(StateError);
      expect(() => new SqliteOutboxStore({ path })).toThrow(/schema version 99, newer/);
    });

    it('a path that cannot be created is a StateError', () => {
      const blocker = join(root, 'blocker');
      writeFileSync(blocker, 'a file, not a folder');
      expect(() => new SqliteOutboxStore({ path: join(blocker, 'outbox.db') })).toThrow(StateError);
    });
  });

  it('every append that resolved survives a SIGKILL right after', async () => {
    const path = join(folder(), 'outbox.db');
    const moduleUrl = new URL('./sqlite-store.ts', import.meta.url).href;
    const script = `
      import { SqliteOutboxStore } from ${JSON.stringify(moduleUrl)};
      const store = new SqliteOutboxStore({ path: ${JSON.stringify(path)} });
      const scope = { remote: 'https://api.example', project: 'p', principal: 'alice' };
      let done = 0;
      for (let round = 0; ; round++) {
        await Promise.all(Array.from({ length: 50 }, (_, i) =>
          store.append(scope, { key: 'k' + i, kind: 'delete' }).then(() => done++)));
        process.stdout.write(done + '\\n');
      }
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    let acknowledged = 0;
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (chunk: Buffer) => {
        const last = chunk.toString().trim().split('\n').pop();
        acknowledged = Math.max(acknowledged, Number(last));
        if (acknowledged >= 500) {
          child.kill('SIGKILL');
          resolve();
        }
      });
    });
    await exited;
    const store = new SqliteOutboxStore({ path });
    expect((await store.counts(scope)).pending).toBeGreaterThanOrEqual(acknowledged);
    await store.close();
  });

  describe('sender lock across processes', () => {
    it('a second process gets a StateError naming the holder; it may still append; SIGKILL frees the lock', async () => {
      const path = join(folder(), 'outbox.db');
      const moduleUrl = new URL('./sqlite-store.ts', import.meta.url).href;
      const script = `
        import { SqliteOutboxStore } from ${JSON.stringify(moduleUrl)};
        const store = new SqliteOutboxStore({ path: ${JSON.stringify(path)} });
        await store.lock('child-run');
        process.stdout.write('locked\\n');
        setInterval(() => {}, 60_000);
      `;
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      try {
        await new Promise<void>((resolve, reject) => {
          child.stdout.on('data', (chunk: Buffer) => {
            if (chunk.toString().includes('locked')) resolve();
          });
          child.once('exit', (code) => reject(new Error(`child exited ${code}: ${stderr}`)));
        });
        const store = new SqliteOutboxStore({ path });
        const refused = await store.lock('parent-run').catch((error: unknown) => error);
        expect(refused).toBeInstanceOf(StateError);
        expect((refused as Error).message).toContain(`pid ${child.pid}`);
        expect((refused as Error).message).toContain('"child-run"');
        // Pushing is still allowed while another process sends.
        await store.append(scope, { key: 'x', kind: 'delete' });
        expect((await store.counts(scope)).pending).toBe(1);

        child.kill('SIGKILL');
        await exited;
        const lock = await store.lock('parent-run');
        await lock.release();
        await store.close();
      } finally {
        child.kill('SIGKILL');
        await exited;
      }
    });
  });
});
