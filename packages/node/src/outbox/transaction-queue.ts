import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { ClosedError } from '@upsync/core';

export interface TransactionQueueOptions {
  db: DatabaseSync;
  /**
   * Group commit (default true): operations submitted in the same turn of the
   * event loop share one transaction, so one fsync pays for all of them. When
   * false, each operation runs at once in a transaction of its own.
   */
  groupCommit?: boolean;
  /** The most operations one group transaction carries; the rest go in the next. */
  maxBatch?: number;
  /** Turns an error thrown by SQLite into the error callers see. */
  mapError: (error: unknown) => unknown;
  /** Called after a transaction (or part of one) was rolled back: caches of rows it wrote are stale. */
  onRollback?: () => void;
}

interface Result {
  readonly ok: boolean;
  readonly value: unknown;
}

interface Queued {
  readonly run: () => unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Runs every store operation in a write transaction, in submission order, and
 * settles its promise only after that transaction's COMMIT returned (with
 * synchronous=FULL: on disk). An operation that throws is rolled back alone
 * and the rest of its group commit: a group first runs without savepoints (an
 * operation that throws is rare, and two savepoint statements per operation
 * were a third of a burst's cost); if one throws, the whole transaction is
 * rolled back and the group runs again with each operation in its own
 * savepoint. Operations must therefore only write to the database (they may
 * run twice, and only the run that commits counts).
 */
export class TransactionQueue {
  readonly #db: DatabaseSync;
  readonly #group: boolean;
  readonly #maxBatch: number;
  readonly #mapError: (error: unknown) => unknown;
  readonly #onRollback: () => void;
  /**
   * Transaction control as prepared statements: a group runs two savepoint
   * statements per operation, and `exec` parses its SQL on every call, which
   * cost more than a small INSERT.
   */
  readonly #sql: Record<'begin' | 'commit' | 'savepoint' | 'release' | 'rollbackTo', StatementSync>;
  #queue: Queued[] = [];
  #scheduled = false;
  #closed = false;
  #idle: (() => void) | undefined;

  constructor(options: TransactionQueueOptions) {
    const maxBatch = options.maxBatch ?? 5_000;
    if (!Number.isInteger(maxBatch) || maxBatch < 1) {
      throw new TypeError(`maxBatch must be an integer >= 1, got ${String(maxBatch)}`);
    }
    this.#db = options.db;
    this.#group = options.groupCommit ?? true;
    this.#maxBatch = maxBatch;
    this.#mapError = options.mapError;
    this.#onRollback = options.onRollback ?? (() => {});
    const db = options.db;
    this.#sql = {
      begin: db.prepare('BEGIN IMMEDIATE'),
      commit: db.prepare('COMMIT'),
      savepoint: db.prepare('SAVEPOINT op'),
      release: db.prepare('RELEASE op'),
      rollbackTo: db.prepare('ROLLBACK TO op'),
    };
  }

  submit<T>(operation: () => T): Promise<T> {
    if (this.#closed) return Promise.reject(new ClosedError('the outbox store is closed'));
    if (!this.#group) {
      try {
        return Promise.resolve(this.#alone(operation));
      } catch (error) {
        return Promise.reject(error instanceof Error ? error : new Error(String(error)));
      }
    }
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ run: operation, resolve: resolve as (value: unknown) => void, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        // setImmediate runs after the poll phase: every append that arrived in
        // this loop turn (from timers, I/O callbacks, promise chains) has joined.
        setImmediate(() => this.#flush());
      }
    });
  }

  /** Commits what was submitted, then refuses new work. */
  async close(): Promise<void> {
    this.#closed = true;
    if (!this.#scheduled) return;
    await new Promise<void>((resolve) => (this.#idle = resolve));
  }

  #alone<T>(operation: () => T): T {
    try {
      this.#sql.begin.run();
      const result = operation();
      this.#sql.commit.run();
      return result;
    } catch (error) {
      this.#rollback();
      throw this.#mapError(error);
    }
  }

  #flush(): void {
    const batch = this.#queue.splice(0, this.#maxBatch);
    try {
      const results = this.#runGroup(batch, false) ?? this.#runGroup(batch, true)!;
      batch.forEach((item, index) => {
        const result = results[index]!;
        if (result.ok) item.resolve(result.value);
        else item.reject(result.value);
      });
    } catch (error) {
      // BEGIN or COMMIT failed (busy past the timeout, disk full, I/O error):
      // nothing of the batch is durable, so every operation of it fails.
      this.#rollback();
      const mapped = this.#mapError(error);
      for (const item of batch) item.reject(mapped);
    }
    if (this.#queue.length > 0) {
      setImmediate(() => this.#flush());
      return;
    }
    this.#scheduled = false;
    this.#idle?.();
    this.#idle = undefined;
  }

  /**
   * Runs the group in one committed transaction. Without savepoints, an
   * operation that throws rolls everything back and the result is undefined
   * (run it again with savepoints); with them, it is rolled back alone.
   */
  #runGroup(batch: readonly Queued[], savepoints: boolean): Result[] | undefined {
    const sql = this.#sql;
    const results: Result[] = [];
    sql.begin.run();
    for (const item of batch) {
      if (!savepoints) {
        try {
          results.push({ ok: true, value: item.run() });
        } catch {
          this.#rollback();
          return undefined;
        }
        continue;
      }
      sql.savepoint.run();
      try {
        results.push({ ok: true, value: item.run() });
        sql.release.run();
      } catch (error) {
        sql.rollbackTo.run();
        sql.release.run();
        this.#onRollback();
        results.push({ ok: false, value: this.#mapError(error) });
      }
    }
    sql.commit.run();
    return results;
  }

  #rollback(): void {
    try {
      if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
    } catch {
      // The connection is broken; the caller sees the original error.
    }
    this.#onRollback();
  }
}
