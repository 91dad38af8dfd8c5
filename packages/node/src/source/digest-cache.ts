import { mkdirSync, rmSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { ClosedError, StateError, isUpsyncError } from '@upsync/core';
import type { FileStamp } from './file-changed-error.ts';
import { hashFile, openForReading, type HashedFile, type OpenFile } from './hash-file.ts';

export interface DigestCacheOptions {
  /** The database file, e.g. `<state>/digests.db`; its folder is created when missing. */
  readonly path: string;
  /** The folder whose files are cached: one state folder may serve several roots. */
  readonly root: string;
  /**
   * How close to the moment its digest was taken a file's mtime may be and
   * still be trusted later (default 10 ms, above the coarse timestamp tick of
   * Linux file systems). A write in the same tick as the read leaves (size,
   * mtime, inode) unchanged, so such "racily clean" entries are hashed again
   * next time, as git does. Raise it for file systems with coarse times (FAT: 2,000).
   */
  readonly racyWindowMs?: number;
  /** Wall-clock time, comparable with file mtimes; default `Date.now`. */
  readonly now?: () => number;
  /** Opens files to hash them; tests count the opens through it. */
  readonly open?: OpenFile;
}

/** What the cache has done since it was opened. */
export interface DigestCacheStats {
  /** Lookups answered without reading the file. */
  hits: number;
  /** Lookups that had to read the file. */
  misses: number;
  filesRead: number;
  bytesRead: number;
}

interface Row {
  size: number;
  mtime_ms: number;
  ino: string;
  digest: string;
  hashed_ms: number;
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS file_digests (
    root TEXT NOT NULL,
    key TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ms REAL NOT NULL,
    -- TEXT: an inode may not fit a double exactly, and it is only compared.
    ino TEXT NOT NULL,
    digest TEXT NOT NULL,
    -- When the read that produced the digest began (wall clock), for the racy check.
    hashed_ms REAL NOT NULL,
    PRIMARY KEY (root, key)
  ) WITHOUT ROWID;
`;

/** SQLITE_CORRUPT, SQLITE_NOTADB: the cache is damaged; it is only a cache, so start over. */
const DAMAGED = new Set([11, 26]);

/**
 * (size, mtime, inode) -> SHA-256 per key, in SQLite, so that a second scan
 * of an unchanged folder opens no file (shared/DESIGN.md "Deciding whether an
 * item needs sending"). The cache can always be rebuilt by reading the files,
 * so it is written with synchronous=NORMAL and a damaged file is replaced,
 * unlike the outbox.
 */
export class DigestCache {
  readonly path: string;
  readonly root: string;
  readonly stats: DigestCacheStats = { hits: 0, misses: 0, filesRead: 0, bytesRead: 0 };
  readonly #racyWindowMs: number;
  readonly #now: () => number;
  readonly #open: OpenFile;
  readonly #db: DatabaseSync;
  readonly #get: StatementSync;
  readonly #put: StatementSync;
  readonly #delete: StatementSync;
  readonly #keys: StatementSync;
  #closed = false;

  constructor(options: DigestCacheOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(`options must be { path, root, ... }, got ${String(options)}`);
    }
    if (typeof options.path !== 'string' || options.path === '') {
      throw new TypeError(`path must be a non-empty string, got ${JSON.stringify(options.path)}`);
    }
    if (typeof options.root !== 'string' || options.root === '') {
      throw new TypeError(`root must be a non-empty string, got ${JSON.stringify(options.root)}`);
    }
    const racyWindowMs = options.racyWindowMs ?? 10;
    if (!Number.isFinite(racyWindowMs) || racyWindowMs < 0) {
      throw new TypeError(`racyWindowMs must be a number >= 0, got ${String(racyWindowMs)}`);
    }
    if (options.now !== undefined && typeof options.now !== 'function') {
      throw new TypeError(`now must be a function, got ${typeof options.now}`);
    }
    if (options.open !== undefined && typeof options.open !== 'function') {
      throw new TypeError(`open must be a function, got ${typeof options.open}`);
    }
    this.path = options.path;
    this.root = resolve(options.root);
    this.#racyWindowMs = racyWindowMs;
    this.#now = options.now ?? Date.now;
    this.#open = options.open ?? openForReading;
    this.#db = this.#openDb();
    this.#get = this.#db.prepare(
      'SELECT size, mtime_ms, ino, digest, hashed_ms FROM file_digests WHERE root = ? AND key = ?',
    );
    this.#put = this.#db.prepare(
      `INSERT INTO file_digests (root, key, size, mtime_ms, ino, digest, hashed_ms)
       VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (root, key) DO UPDATE SET size = excluded.size, mtime_ms = excluded.mtime_ms,
         ino = excluded.ino, digest = excluded.digest, hashed_ms = excluded.hashed_ms`,
    );
    this.#delete = this.#db.prepare('DELETE FROM file_digests WHERE root = ? AND key = ?');
    this.#keys = this.#db.prepare('SELECT key FROM file_digests WHERE root = ?');
  }

  #openDb(): DatabaseSync {
    for (let attempt = 0; ; attempt++) {
      let db: DatabaseSync | undefined;
      try {
        mkdirSync(dirname(this.path), { recursive: true });
        db = new DatabaseSync(this.path, { timeout: 5_000 });
        db.exec('PRAGMA journal_mode = WAL');
        db.exec('PRAGMA synchronous = NORMAL');
        db.exec(SCHEMA);
        return db;
      } catch (error) {
        try {
          db?.close();
        } catch {
          // Already broken; the error below says why.
        }
        const errcode = (error as { errcode?: number }).errcode;
        if (attempt === 0 && errcode !== undefined && DAMAGED.has(errcode)) {
          for (const suffix of ['', '-wal', '-shm']) rmSync(this.path + suffix, { force: true });
          continue;
        }
        const message = error instanceof Error ? error.message : String(error);
        throw new StateError(
          `the digest cache ${this.path} cannot be opened (${message}): check that the state folder is writable`,
          { cause: error },
        );
      }
    }
  }

  #check(): void {
    if (this.#closed) throw new ClosedError('the digest cache is closed');
  }

  /** The cached digest when the file's stamp is the one it was taken from, else undefined. */
  get(key: string, stamp: Required<FileStamp>): string | undefined {
    this.#check();
    const row = this.#get.get(this.root, key) as Row | undefined;
    if (
      row === undefined ||
      Number(row.size) !== stamp.size ||
      Number(row.mtime_ms) !== stamp.mtimeMs ||
      row.ino !== String(stamp.ino) ||
      // Racily clean: a write in the same timestamp tick as the read would not show.
      stamp.mtimeMs > Number(row.hashed_ms) - this.#racyWindowMs
    ) {
      return undefined;
    }
    return row.digest;
  }

  /** Records a digest taken by a read that began at `hashedAtMs` (wall clock). */
  set(key: string, stamp: Required<FileStamp>, digest: string, hashedAtMs: number): void {
    this.#check();
    this.#put.run(this.root, key, stamp.size, stamp.mtimeMs, String(stamp.ino), digest, hashedAtMs);
  }

  /**
   * The file's digest: from the cache when its stamp is unchanged, else by
   * reading it (and caching the result). The returned stamp is the one the
   * digest belongs to, which may be newer than the one given if the file
   * changed since it was scanned. Throws FileChangedError when the file keeps
   * changing while it is read, and the open's error (ENOENT) when it is gone.
   */
  async digest(
    key: string,
    path: string,
    stamp: Required<FileStamp>,
    options: { signal?: AbortSignal | undefined } = {},
  ): Promise<HashedFile & { readonly cached: boolean }> {
    this.#check();
    const cached = this.get(key, stamp);
    if (cached !== undefined) {
      this.stats.hits++;
      return { ...stamp, digest: cached, bytesRead: 0, cached: true };
    }
    this.stats.misses++;
    const startedMs = this.#now();
    const hashed = await hashFile(path, { open: this.#open, signal: options.signal });
    this.stats.filesRead++;
    this.stats.bytesRead += hashed.bytesRead;
    if (!this.#closed) this.set(key, hashed, hashed.digest, startedMs);
    return { ...hashed, cached: false };
  }

  delete(key: string): void {
    this.#check();
    this.#delete.run(this.root, key);
  }

  /** Drops the entries of keys a full scan did not find, so the cache does not grow forever. */
  retainOnly(keys: ReadonlySet<string>): number {
    this.#check();
    let dropped = 0;
    this.#db.exec('BEGIN');
    try {
      for (const row of this.#keys.all(this.root) as Array<{ key: string }>) {
        if (!keys.has(row.key)) {
          this.#delete.run(this.root, row.key);
          dropped++;
        }
      }
      this.#db.exec('COMMIT');
    } catch (error) {
      this.#db.exec('ROLLBACK');
      throw isUpsyncError(error)
        ? error
        : new StateError(`the digest cache ${this.path} failed`, { cause: error });
    }
    return dropped;
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#db.close();
    }
    return Promise.resolve();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
