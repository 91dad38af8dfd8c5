// Durability with the sync taken off the event loop: GroupCommit's `sync`, and
// SqliteStorage at synchronous=OFF with its own fdatasync and checkpoints.
import { copyFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, describe, expect, it } from 'vitest';
import { GroupCommit } from './group-commit.ts';
import { SqliteStorage } from './sqlite-storage.ts';
import { auth, startTestServer } from './test-helpers.ts';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'upsync-wal-sync-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A sync that the test resolves by hand, recording how many were asked for. */
function manualSync(): { sync: () => Promise<void>; calls: number; release: () => void } {
  const pending: (() => void)[] = [];
  const gate = {
    calls: 0,
    sync: () => {
      gate.calls += 1;
      return new Promise<void>((resolve) => pending.push(resolve));
    },
    release: () => pending.shift()?.(),
  };
  return gate;
}

describe('GroupCommit with a sync', () => {
  it('settles nothing before the sync after its COMMIT resolved, and batches what comes meanwhile', async () => {
    const db = new DatabaseSync(':memory:');
    db.exec('CREATE TABLE t (v INTEGER)');
    const gate = manualSync();
    let commits = 0;
    const group = new GroupCommit({ db, sync: gate.sync, afterCommit: () => (commits += 1) });
    const insert = db.prepare('INSERT INTO t VALUES (?)');
    const settled: number[] = [];
    const first = [1, 2].map((v) => group.submit(() => insert.run(v)).then(() => settled.push(v)));
    await turn();
    expect(commits).toBe(1);
    expect(gate.calls).toBe(1);
    // Committed (visible) but not yet durable: nobody is answered, readers wait too.
    expect(db.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 2 });
    let readerDone = false;
    const reader = group.durable().then(() => (readerDone = true));
    const second = [3, 4, 5].map((v) =>
      group.submit(() => insert.run(v)).then(() => settled.push(v)),
    );
    await turn();
    await turn();
    expect(settled).toEqual([]);
    expect(readerDone).toBe(false);
    // While a sync runs, the next batch waits instead of committing on its own.
    expect(commits).toBe(1);

    gate.release();
    await Promise.all([...first, reader]);
    expect(settled).toEqual([1, 2]);
    await turn();
    expect(commits).toBe(2);
    expect(gate.calls).toBe(2);
    expect(settled).toEqual([1, 2]);

    gate.release();
    await Promise.all(second);
    expect(settled).toEqual([1, 2, 3, 4, 5]);
    const closing = group.close();
    await closing;
    db.close();
  });

  it('fails every waiting and later write once a sync fails', async () => {
    const db = new DatabaseSync(':memory:');
    db.exec('CREATE TABLE t (v INTEGER)');
    const group = new GroupCommit({ db, sync: () => Promise.reject(new Error('EIO')) });
    await expect(group.submit(() => db.exec('INSERT INTO t VALUES (1)'))).rejects.toThrow('EIO');
    await expect(group.submit(() => 1)).rejects.toThrow('EIO');
    await expect(group.durable()).rejects.toThrow('EIO');
    await group.close();
    db.close();
  });

  it('runs a batch again with savepoints when one operation throws', async () => {
    const db = new DatabaseSync(':memory:');
    db.exec('CREATE TABLE t (v INTEGER)');
    const insert = db.prepare('INSERT INTO t VALUES (?)');
    const runs: number[] = [];
    const group = new GroupCommit({ db, sync: () => Promise.resolve() });
    const results = await Promise.allSettled([
      group.submit(() => {
        runs.push(1);
        return insert.run(1);
      }),
      group.submit(() => {
        insert.run(2);
        throw new Error('boom');
      }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected']);
    expect(runs).toEqual([1, 1]);
    expect(db.prepare('SELECT v FROM t').all()).toEqual([{ v: 1 }]);
    await group.close();
    db.close();
  });
});

describe('SqliteStorage at synchronous=OFF with its own WAL sync', () => {
  it('answers no PUT before the fdatasync of its batch resolved', async () => {
    const gate = manualSync();
    const server = await startTestServer({
      storage: (dir, inlineMaxBytes) =>
        new SqliteStorage({ dir, inlineMaxBytes, syncWal: gate.sync }),
    });
    let answered = 0;
    const puts = Array.from({ length: 5 }, (_, i) =>
      fetch(`${server.url}/v1/projects/p1/items/w/${i}`, {
        method: 'PUT',
        headers: auth(),
        body: `body ${i}`,
      }).then((response) => {
        answered += 1;
        return response.status;
      }),
    );
    // Wait until at least one batch has committed and asked for its sync.
    while (gate.calls === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(answered).toBe(0);
    // A reader does not see the unsynced write either: it waits for the sync.
    let readDone = false;
    const read = fetch(`${server.url}/v1/projects/p1/items/w/0`, { headers: auth() }).then(
      (response) => {
        readDone = true;
        return response.status;
      },
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(readDone).toBe(false);
    // Release syncs until everything is answered (the PUTs may span batches).
    const all = Promise.all([...puts, read]);
    let done = false;
    void all.then(() => (done = true));
    while (!done) {
      gate.release();
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const statuses = await all;
    expect(statuses.slice(0, 5)).toEqual([201, 201, 201, 201, 201]);
    expect([200, 404]).toContain(statuses[5]);
    await server.close();
  });

  it('checkpoints into the database file and empties the WAL, keeping every write', async () => {
    const dir = tempDir();
    // 0: a checkpoint after every commit.
    const storage = new SqliteStorage({ dir, checkpointBytes: 0 });
    for (let round = 0; round < 3; round += 1) {
      await Promise.all(
        Array.from({ length: 20 }, async (_, i) => {
          const body = await storage.stageBuffer(Buffer.from(`r${round} ${i}`));
          return storage.write({
            kind: 'put',
            project: 'p1',
            key: `c/${i}`,
            body,
            contentType: 'text/plain',
            conditions: undefined,
            idempotency: undefined,
            nowMs: Date.now(),
          });
        }),
      );
      expect(statSync(join(dir, 'upsync.db-wal')).size).toBe(0);
    }
    // What a power loss right now would leave: the files, no shared memory.
    const copy = tempDir();
    copyFileSync(join(dir, 'upsync.db'), join(copy, 'upsync.db'));
    const db = new DatabaseSync(join(copy, 'upsync.db'), { readOnly: true });
    expect(db.prepare('SELECT count(*) AS n FROM items').get()).toEqual({ n: 20 });
    expect(db.prepare("SELECT version FROM items WHERE key = 'c/0'").get()).toEqual({
      version: 3,
    });
    db.close();
    await storage.close();
  });

  it('leaves every answered write in the database and WAL files', async () => {
    const dir = tempDir();
    const server = await startTestServer({ dir });
    const count = 50;
    const statuses = await Promise.all(
      Array.from({ length: count }, (_, i) =>
        fetch(`${server.url}/v1/projects/p1/items/f/${i}`, {
          method: 'PUT',
          headers: auth(),
          body: `body ${i}`,
        }).then((response) => response.status),
      ),
    );
    expect(statuses.every((status) => status === 201)).toBe(true);
    // Copied while the server still runs: no checkpoint, no clean close.
    const copy = tempDir();
    copyFileSync(join(dir, 'upsync.db'), join(copy, 'upsync.db'));
    copyFileSync(join(dir, 'upsync.db-wal'), join(copy, 'upsync.db-wal'));
    const db = new DatabaseSync(join(copy, 'upsync.db'));
    expect(db.prepare("SELECT count(*) AS n FROM items WHERE key LIKE 'f/%'").get()).toEqual({
      n: count,
    });
    db.close();
    await server.close();
  });
});
