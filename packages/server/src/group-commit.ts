import type { DatabaseSync } from 'node:sqlite';
import { ClosedError } from '@upsync/core';

export interface GroupCommitOptions {
  db: DatabaseSync;
  /** The most operations one transaction carries; the rest wait for the next. */
  maxBatch?: number;
  /** Called after each commit, inside the same tick, with the batch's results. */
  afterCommit?: () => void;
}

interface Pending {
  run: () => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit: operations submitted in the same turn of the event loop share
 * one transaction, and each promise settles only after that transaction's
 * COMMIT returned, which with synchronous=FULL means it is on disk. One fsync
 * then pays for many writes. Each operation runs in its own savepoint, so one
 * that throws is rolled back alone and the others still commit.
 */
export class GroupCommit {
  readonly #db: DatabaseSync;
  readonly #maxBatch: number;
  readonly #afterCommit: (() => void) | undefined;
  #queue: Pending[] = [];
  #scheduled = false;
  #closed = false;
  #idle: (() => void) | undefined;

  constructor(options: GroupCommitOptions) {
    if (typeof options?.db?.exec !== 'function') {
      throw new TypeError(`db must be a DatabaseSync, got ${typeof options?.db}`);
    }
    const maxBatch = options.maxBatch ?? 2000;
    if (!Number.isInteger(maxBatch) || maxBatch < 1) {
      throw new TypeError(`maxBatch must be an integer >= 1, got ${String(maxBatch)}`);
    }
    this.#db = options.db;
    this.#maxBatch = maxBatch;
    this.#afterCommit = options.afterCommit;
  }

  /** Runs `operation` inside the next group transaction; resolves once that transaction is durable. */
  submit<T>(operation: () => T): Promise<T> {
    if (this.#closed) return Promise.reject(new ClosedError('the storage is closed'));
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ run: operation, resolve: resolve as (value: unknown) => void, reject });
      this.#schedule();
    });
  }

  /** Commits what is queued, then refuses new work. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#queue.length === 0 && !this.#scheduled) return;
    await new Promise<void>((resolve) => (this.#idle = resolve));
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    // setImmediate runs after the poll phase, so every request whose bytes
    // arrived in this loop turn has joined the queue by then.
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#scheduled = false;
    const batch = this.#queue.splice(0, this.#maxBatch);
    if (this.#queue.length > 0) this.#schedule();
    const results: { ok: boolean; value: unknown }[] = [];
    try {
      this.#db.exec('BEGIN IMMEDIATE');
      for (const item of batch) {
        this.#db.exec('SAVEPOINT op');
        try {
          results.push({ ok: true, value: item.run() });
          this.#db.exec('RELEASE op');
        } catch (error) {
          this.#db.exec('ROLLBACK TO op');
          this.#db.exec('RELEASE op');
          results.push({ ok: false, value: error });
        }
      }
      this.#db.exec('COMMIT');
    } catch (error) {
      if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
      for (const item of batch) item.reject(error);
      this.#finish();
      return;
    }
    this.#afterCommit?.();
    batch.forEach((item, index) => {
      const result = results[index]!;
      if (result.ok) item.resolve(result.value);
      else item.reject(result.value);
    });
    this.#finish();
  }

  #finish(): void {
    if (this.#queue.length === 0 && !this.#scheduled && this.#idle) {
      this.#idle();
      this.#idle = undefined;
    }
  }
}
