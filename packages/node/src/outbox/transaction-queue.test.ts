import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterEach, describe, expect, it } from 'vitest';
import { TransactionQueue } from './transaction-queue.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function open(): DatabaseSync {
  const dir = mkdtempSync(join(tmpdir(), 'upsync-tq-'));
  dirs.push(dir);
  const db = new DatabaseSync(join(dir, 'q.db'));
  db.exec('PRAGMA journal_mode = WAL');
  db.exec('CREATE TABLE t (x INTEGER UNIQUE)');
  return db;
}

const values = (db: DatabaseSync): unknown[] =>
  db
    .prepare('SELECT x FROM t ORDER BY x')
    .all()
    .map((row) => row.x);

describe('TransactionQueue', () => {
  it('rolls back only the operation that threw; the rest of its group commits once', async () => {
    const db = open();
    let rollbacks = 0;
    const queue = new TransactionQueue({
      db,
      mapError: (error) => new Error(`mapped: ${(error as Error).message}`),
      onRollback: () => rollbacks++,
    });
    const insert = db.prepare('INSERT INTO t (x) VALUES (?)');
    const results = await Promise.allSettled([
      queue.submit(() => insert.run(1).changes),
      queue.submit(() => {
        insert.run(2); // written, then undone with the failure
        throw new Error('boom');
      }),
      queue.submit(() => insert.run(1).changes), // a constraint error from SQLite
      queue.submit(() => insert.run(3).changes),
    ]);
    expect(results.map((result) => result.status)).toEqual([
      'fulfilled',
      'rejected',
      'rejected',
      'fulfilled',
    ]);
    expect((results[1] as PromiseRejectedResult).reason).toEqual(new Error('mapped: boom'));
    expect(String((results[2] as PromiseRejectedResult).reason)).toMatch(/mapped: .*UNIQUE/);
    expect(values(db)).toEqual([1, 3]);
    expect(db.isTransaction).toBe(false);
    expect(rollbacks).toBeGreaterThan(0);
    await queue.close();
    db.close();
  });

  it('commits a group that does not throw in one transaction', async () => {
    const db = open();
    const queue = new TransactionQueue({ db, mapError: (error) => error });
    const insert = db.prepare('INSERT INTO t (x) VALUES (?)');
    const inTransaction: boolean[] = [];
    await Promise.all(
      [1, 2, 3].map((x) =>
        queue.submit(() => {
          inTransaction.push(db.isTransaction);
          return insert.run(x);
        }),
      ),
    );
    expect(inTransaction).toEqual([true, true, true]);
    expect(values(db)).toEqual([1, 2, 3]);
    await queue.close();
    db.close();
  });
});
