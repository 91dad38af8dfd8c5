import { lstat, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ClosedError, compareKeys } from '@upsync/core';
import { FileBody } from './file-body.ts';
import { FileChangedError } from './file-changed-error.ts';
import { DigestCache } from './digest-cache.ts';
import { FolderWatcher, type FolderChange } from './folder-watcher.ts';
import { openForReading, type OpenFile } from './hash-file.ts';
import { PathFilter } from './path-filter.ts';
import { scanFolder, type ScanFs, type SkippedEntry } from './scan-folder.ts';

export interface FolderSourceOptions {
  /** The folder to sync. */
  readonly root: string;
  /** The state folder (default `<root>/.upsync`): never synced; holds `digests.db`. */
  readonly stateDir?: string | undefined;
  readonly include?: readonly string[] | undefined;
  readonly exclude?: readonly string[] | undefined;
  readonly followSymlinks?: boolean | undefined;
  /** A cache to use instead of `<stateDir>/digests.db` (the source then does not close it). */
  readonly cache?: DigestCache | undefined;
  /** See DigestCacheOptions.racyWindowMs. */
  readonly racyWindowMs?: number | undefined;
  /** Files hashed at once during a scan; default 8. */
  readonly hashConcurrency?: number | undefined;
  /** Opens files, for hashing and for bodies; tests count opens through it. */
  readonly open?: OpenFile | undefined;
  readonly fs?: ScanFs | undefined;
}

/** A file to offer the engine: its key and its body (size, digest, open()). */
export interface SourceFile {
  readonly type: 'file';
  readonly key: string;
  readonly body: FileBody;
  /** The digest came from the cache: the file was not read. */
  readonly cached: boolean;
}

/** A key the source knew that the folder no longer has (for `--delete`). */
export interface SourceDeletion {
  readonly type: 'deleted';
  readonly key: string;
}

export type SourceItem = SourceFile | SkippedEntry | SourceDeletion;

export interface FolderScanOptions {
  readonly signal?: AbortSignal | undefined;
  /**
   * Keys believed to exist (the synced table's keys, or the remote listing's):
   * each one the scan does not find is yielded as `deleted` after the files.
   * A key under a folder the scan could not read is not taken as deleted.
   */
  readonly knownKeys?: Iterable<string> | undefined;
}

export interface FolderWatchOptions {
  readonly signal?: AbortSignal | undefined;
  readonly onSkip?: ((entry: SkippedEntry) => void) | undefined;
  readonly onError?: ((error: Error) => void) | undefined;
}

const GONE = new Set(['ENOENT', 'ENOTDIR', 'EISDIR']);
/** Attempts to hash a file that keeps changing while it is read, before reporting it skipped. */
const HASH_ATTEMPTS = 3;

/**
 * The folder source for the engine (shared/DESIGN.md "Sources"): a full scan
 * with digests from the cache, so only changed files are read; deletions
 * against a set of known keys; single files by key (for watch events, `--only`
 * and requeues after FileChangedError); and a watcher.
 */
export class FolderSource {
  readonly root: string;
  readonly stateDir: string;
  readonly filter: PathFilter;
  readonly cache: DigestCache;
  readonly #ownsCache: boolean;
  readonly #follow: boolean;
  readonly #hashConcurrency: number;
  readonly #open: OpenFile;
  readonly #fs: ScanFs | undefined;
  /** Key -> path as last seen: a key is NFC, the name on disk may not be. */
  readonly #paths = new Map<string, string>();
  readonly #watchers = new Set<FolderWatcher>();
  #closed = false;

  constructor(options: FolderSourceOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(`options must be { root, ... }, got ${String(options)}`);
    }
    if (typeof options.root !== 'string' || options.root === '') {
      throw new TypeError(`root must be a non-empty string, got ${JSON.stringify(options.root)}`);
    }
    const hashConcurrency = options.hashConcurrency ?? 8;
    if (!Number.isSafeInteger(hashConcurrency) || hashConcurrency < 1) {
      throw new TypeError(
        `hashConcurrency must be an integer >= 1, got ${String(hashConcurrency)}`,
      );
    }
    if (options.followSymlinks !== undefined && typeof options.followSymlinks !== 'boolean') {
      throw new TypeError(
        `followSymlinks must be a boolean, got ${JSON.stringify(options.followSymlinks)}`,
      );
    }
    this.root = resolve(options.root);
    this.stateDir = resolve(options.stateDir ?? join(this.root, '.upsync'));
    this.filter = new PathFilter({
      root: this.root,
      stateDir: this.stateDir,
      include: options.include,
      exclude: options.exclude,
    });
    this.#follow = options.followSymlinks ?? false;
    this.#hashConcurrency = hashConcurrency;
    this.#open = options.open ?? openForReading;
    this.#fs = options.fs;
    this.#ownsCache = options.cache === undefined;
    this.cache =
      options.cache ??
      new DigestCache({
        path: join(this.stateDir, 'digests.db'),
        root: this.root,
        open: this.#open,
        ...(options.racyWindowMs === undefined ? {} : { racyWindowMs: options.racyWindowMs }),
      });
  }

  #check(): void {
    if (this.#closed) throw new ClosedError('the folder source is closed');
  }

  /**
   * Hashes (or looks up) one scanned file. A file that vanished gives
   * undefined; one that keeps changing while read gives a skipped entry (the
   * watcher or the next scan picks it up once it settles).
   */
  async #item(
    key: string,
    path: string,
    stamp: { size: number; mtimeMs: number; ino: number },
    signal: AbortSignal | undefined,
  ): Promise<SourceFile | SkippedEntry | undefined> {
    let current = stamp;
    for (let attempt = 1; ; attempt++) {
      try {
        const hashed = await this.cache.digest(key, path, current, { signal });
        const body = new FileBody({
          path,
          size: hashed.size,
          mtimeMs: hashed.mtimeMs,
          ino: hashed.ino,
          digest: hashed.digest,
          open: this.#open,
        });
        return { type: 'file', key, body, cached: hashed.cached };
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        const code = (error as { code?: unknown }).code;
        if (typeof code === 'string' && GONE.has(code)) return undefined;
        if (error instanceof FileChangedError && attempt < HASH_ATTEMPTS) {
          if (error.actual?.ino !== undefined) {
            current = {
              size: error.actual.size,
              mtimeMs: error.actual.mtimeMs,
              ino: error.actual.ino,
            };
          }
          continue;
        }
        const errno = typeof code === 'string' && code.startsWith('E') ? code : undefined;
        return {
          type: 'skipped',
          key,
          path,
          folder: false,
          code: 'UNREADABLE',
          ...(errno === undefined ? {} : { errno }),
          reason:
            error instanceof FileChangedError
              ? `it kept changing while it was read (${HASH_ATTEMPTS} tries)`
              : `cannot read it: ${(error as Error).message}`,
        };
      }
    }
  }

  /**
   * Every file in key order with its body, reading only files whose (size,
   * mtime, inode) changed since the cache saw them; every skipped entry; then,
   * when `knownKeys` is given, every known key the folder no longer has.
   * A full scan also prunes the cache of keys that are gone.
   */
  async *scan(options: FolderScanOptions = {}): AsyncGenerator<SourceItem> {
    this.#check();
    const signal = options.signal;
    const seen = new Set<string>();
    const unreadableFolders: string[] = [];
    const unseenFiles = new Set<string>();
    // Hashes run ahead of the consumer, a few at a time, yet come out in key order.
    const window: Array<Promise<SourceItem | undefined>> = [];
    const entries = scanFolder({
      root: this.root,
      filter: this.filter,
      followSymlinks: this.#follow,
      fs: this.#fs,
      signal,
    });
    try {
      for await (const entry of entries) {
        if (entry.type === 'skipped') {
          if (entry.folder) unreadableFolders.push(`${entry.key}/`);
          else unseenFiles.add(entry.key);
          window.push(Promise.resolve(entry));
        } else {
          seen.add(entry.key);
          this.#paths.set(entry.key, entry.path);
          window.push(this.#item(entry.key, entry.path, entry, signal));
        }
        while (window.length >= this.#hashConcurrency) {
          const item = await window.shift()!;
          if (item) yield item;
        }
      }
      while (window.length > 0) {
        const item = await window.shift()!;
        if (item) yield item;
      }
    } finally {
      // Ended early (abort, or the consumer stopped): settle the hashes still running.
      for (const pending of window.splice(0)) pending.catch(() => {});
    }
    // Keys under an unreadable folder stay in the cache: they were not seen, not deleted.
    const keep = new Set(seen);
    if (unreadableFolders.length === 0) {
      this.cache.retainOnly(keep);
    }
    if (options.knownKeys !== undefined) {
      const gone: string[] = [];
      for (const key of options.knownKeys) {
        if (seen.has(key) || unseenFiles.has(key)) continue;
        if (unreadableFolders.some((prefix) => key.startsWith(prefix))) continue;
        // A known key the rules now leave out is not a deletion of the file.
        if (!this.filter.accepts(key)) continue;
        gone.push(key);
      }
      for (const key of [...new Set(gone)].sort(compareKeys)) {
        this.#paths.delete(key);
        yield { type: 'deleted', key };
      }
    }
  }

  /**
   * One file by key, as it is now: its body (digest from the cache when
   * unchanged), or null when the folder has no such file. For watch events,
   * `--only KEY`, and requeueing a key after FileChangedError.
   */
  async file(
    key: string,
    options: { signal?: AbortSignal | undefined } = {},
  ): Promise<SourceFile | SkippedEntry | null> {
    this.#check();
    if (typeof key !== 'string' || key === '') {
      throw new TypeError(`key must be a non-empty string, got ${JSON.stringify(key)}`);
    }
    const path = this.#paths.get(key) ?? join(this.root, ...key.split('/'));
    if (!this.filter.accepts(key)) return null;
    let stats;
    try {
      stats = await (this.#follow ? stat : lstat)(path);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (typeof code === 'string' && GONE.has(code)) return null;
      throw error;
    }
    if (!stats.isFile()) return null;
    const item = await this.#item(key, path, stats, options.signal);
    return item ?? null;
  }

  /**
   * Watches the folder and calls `onChange` for every file added, changed or
   * deleted, within ~100 ms. Resolves once the watcher is ready; close it (or
   * the source) to stop.
   */
  async watch(
    onChange: (change: FolderChange) => void,
    options: FolderWatchOptions = {},
  ): Promise<FolderWatcher> {
    this.#check();
    const watcher = new FolderWatcher({
      root: this.root,
      filter: this.filter,
      followSymlinks: this.#follow,
      onChange: (change) => {
        if (change.kind === 'put') this.#paths.set(change.key, change.path);
        else this.#paths.delete(change.key);
        onChange(change);
      },
      onSkip: options.onSkip,
      onError: options.onError,
    });
    this.#watchers.add(watcher);
    try {
      await watcher.ready({ signal: options.signal });
    } catch (error) {
      this.#watchers.delete(watcher);
      await watcher.close();
      throw error;
    }
    return watcher;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#watchers].map((watcher) => watcher.close()));
    this.#watchers.clear();
    if (this.#ownsCache) await this.cache.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
