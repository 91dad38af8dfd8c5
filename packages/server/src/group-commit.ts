import type { DatabaseSync } from 'node:sqlite';
import { ClosedError } from '@upsync/core';

export interface GroupCommitOptions {
  db: DatabaseSync;
  /** The most operations one transaction carries; the rest wait for the next. */
  maxBatch?: number;
  /**
   * Makes every transaction committed so far durable. Give it when COMMIT does
   * not sync by itself (synchronous=OFF); operations then settle only once a
   * sync that started after their COMMIT has resolved. Without it, COMMIT is
   * taken to be durable when it returns.
   */
  sync?: () => Promise<void>;
  /** Called right after each COMMIT, in the same tick and outside the transaction. */
  afterCommit?: () => void;
}

interface Result {
  ok: boolean;
  value: unknown;
}

interface Pending {
  run: () => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/** Waits for the transaction numbered `seq` to be durable. */
interface Waiter {
  seq: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit: operations submitted together share one transaction, and each
 * promise settles only after that transaction is on disk. One sync then pays
 * for many writes.
 *
 * With `sync`, COMMIT only writes (cheap) and the sync runs elsewhere (libuv's
 * thread pool), so the event loop keeps reading and parsing requests while the
 * disk works. Exactly one batch is between COMMIT and durable at a time: the
 * operations that arrive meanwhile wait and form the next batch, committed as
 * soon as the sync resolves. Waiting costs little latency (their sync could
 * not start before the running one ends anyway) and makes batches bigger, so
 * fewer transactions write the same B-tree pages to the WAL again and fewer
 * syncs are dispatched (each costs a thread-pool wake-up).
 *
 * A failed sync is fatal: after fsync fails, Linux may drop the dirty pages and
 * report the next fsync as a success, so nothing written since can be trusted
 * to be durable. Every waiting and later operation is rejected with that error.
 */
export class GroupCommit {
  readonly #db: DatabaseSync;
  readonly #maxBatch: number;
  readonly #sync: (() => Promise<void>) | undefined;
  readonly #afterCommit: (() => void) | undefined;
  #queue: Pending[] = [];
  #scheduled = false;
  #closed = false;
  #idle: (() => void) | undefined;
  // Transactions are numbered from 1; #durable <= #committed.
  #committed = 0;
  #durable = 0;
  #syncing = false;
  #failure: { error: Error } | undefined;
  readonly #waiters: Waiter[] = [];

  constructor(options: GroupCommitOptions) {
    if (typeof options?.db?.exec !== 'function') {
      throw new TypeError(`db must be a DatabaseSync, got ${typeof options?.db}`);
    }
    const maxBatch = options.maxBatch ?? 2000;
    if (!Number.isInteger(maxBatch) || maxBatch < 1) {
      throw new TypeError(`maxBatch must be an integer >= 1, got ${String(maxBatch)}`);
    }
    if (options.sync !== undefined && typeof options.sync !== 'function') {
      throw new TypeError(`sync must be a function, got ${typeof options.sync}`);
    }
    this.#db = options.db;
    this.#maxBatch = maxBatch;
    this.#sync = options.sync;
    this.#afterCommit = options.afterCommit;
  }

  /**
   * Runs `operation` inside the next group transaction; resolves once that
   * transaction is durable. Operations run without savepoints first; if one
   * throws, the transaction is rolled back and the batch run again with one
   * savepoint each, so only that one fails. An operation may therefore run
   * twice, and should change nothing outside the database that a second run
   * would not make harmless.
   */
  submit<T>(operation: () => T): Promise<T> {
    if (this.#failure) return Promise.reject(this.#failure.error);
    if (this.#closed) return Promise.reject(new ClosedError('the storage is closed'));
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ run: operation, resolve: resolve as (value: unknown) => void, reject });
      this.#schedule();
    });
  }

  /**
   * Resolves once every transaction committed so far is durable. A reader calls
   * it after its query, in the same tick, so it never answers with a write that
   * a power loss could still take back.
   */
  durable(): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure.error);
    if (this.#durable === this.#committed) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.#waiters.push({ seq: this.#committed, resolve, reject });
    });
  }

  /** Commits and syncs what is queued, then refuses new work. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#isIdle()) return;
    await new Promise<void>((resolve) => (this.#idle = resolve));
  }

  #schedule(): void {
    // While a sync runs, its end schedules the next batch.
    if (this.#scheduled || this.#syncing || this.#queue.length === 0) return;
    this.#scheduled = true;
    // setImmediate runs after the poll phase, so every request whose bytes
    // arrived in this loop turn has joined the queue by then.
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#scheduled = false;
    const batch = this.#queue.splice(0, this.#maxBatch);
    if (this.#failure) {
      for (const item of batch) item.reject(this.#failure.error);
      this.#finish();
      return;
    }
    let results: Result[];
    try {
      try {
        results = this.#transaction(batch, false);
      } catch {
        results = this.#transaction(batch, true);
      }
    } catch (error) {
      for (const item of batch) item.reject(error);
      this.#schedule();
      this.#finish();
      return;
    }
    this.#committed += 1;
    this.#waiters.push({
      seq: this.#committed,
      resolve: () => {
        batch.forEach((item, index) => {
          const result = results[index]!;
          if (result.ok) item.resolve(result.value);
          else item.reject(result.value);
        });
      },
      reject: (error) => {
        for (const item of batch) item.reject(error);
      },
    });
    try {
      this.#afterCommit?.();
    } catch (error) {
      this.#fail(error);
    }
    // On failure, #fail has already rejected this batch.
    if (this.#failure === undefined) {
      if (this.#sync) this.#startSync();
      else this.#settle(this.#committed);
    }
    this.#schedule();
    this.#finish();
  }

  /** One transaction over `batch`; with `isolate`, each operation in its own savepoint. */
  #transaction(batch: readonly Pending[], isolate: boolean): Result[] {
    const db = this.#db;
    db.exec('BEGIN IMMEDIATE');
    try {
      const results = batch.map((item): Result => {
        if (!isolate) return { ok: true, value: item.run() };
        db.exec('SAVEPOINT op');
        try {
          const value = item.run();
          db.exec('RELEASE op');
          return { ok: true, value };
        } catch (error) {
          db.exec('ROLLBACK TO op');
          db.exec('RELEASE op');
          return { ok: false, value: error };
        }
      });
      db.exec('COMMIT');
      return results;
    } catch (error) {
      if (db.isTransaction) db.exec('ROLLBACK');
      throw error;
    }
  }

  #startSync(): void {
    this.#syncing = true;
    // Covers every COMMIT that returned before this call.
    const upTo = this.#committed;
    new Promise<void>((resolve) => resolve(this.#sync!())).then(
      () => {
        this.#syncing = false;
        // Commit the batch that formed meanwhile and start its sync before
        // answering this one, so the disk works while the answers go out.
        if (this.#queue.length > 0) this.#flush();
        this.#settle(upTo);
        this.#finish();
      },
      (error: unknown) => {
        this.#syncing = false;
        this.#fail(error);
        this.#schedule();
        this.#finish();
      },
    );
  }

  #settle(upTo: number): void {
    this.#durable = upTo;
    while (this.#waiters.length > 0 && this.#waiters[0]!.seq <= upTo) {
      this.#waiters.shift()!.resolve();
    }
  }

  #fail(error: unknown): void {
    this.#failure ??= { error: error instanceof Error ? error : new Error(String(error)) };
    for (const waiter of this.#waiters.splice(0)) waiter.reject(this.#failure.error);
  }

  #isIdle(): boolean {
    return (
      this.#queue.length === 0 &&
      !this.#scheduled &&
      !this.#syncing &&
      (this.#failure !== undefined || this.#durable === this.#committed)
    );
  }

  #finish(): void {
    if (this.#idle && this.#isIdle()) {
      this.#idle();
      this.#idle = undefined;
    }
  }
}
