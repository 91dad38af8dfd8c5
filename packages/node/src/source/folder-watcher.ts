import type { Stats } from 'node:fs';
import { lstat, stat } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import { ClosedError } from '@upsync/core';
import { keyProblem } from '@upsync/core';
import { PathFilter } from './path-filter.ts';
import type { SkippedEntry } from './scan-folder.ts';

/** A file that appeared, changed or went away. */
export interface FolderChange {
  readonly key: string;
  readonly kind: 'put' | 'delete';
  /** Where the file is on disk (its name as the disk spells it). */
  readonly path: string;
}

export interface FolderWatcherOptions {
  readonly root: string;
  /** The state folder (default `<root>/.upsync`); never watched. */
  readonly stateDir?: string | undefined;
  readonly include?: readonly string[] | undefined;
  readonly exclude?: readonly string[] | undefined;
  /** Follow symbolic links (default false), as the scanner does. */
  readonly followSymlinks?: boolean | undefined;
  /** A filter built elsewhere (shared with the scanner); overrides the glob options. */
  readonly filter?: PathFilter | undefined;
  readonly onChange: (change: FolderChange) => void;
  /** A changed file that cannot be synced (bad key, bad name, a link not followed). */
  readonly onSkip?: ((entry: SkippedEntry) => void) | undefined;
  /** Errors of the underlying watcher (EACCES on a folder, too many watches). */
  readonly onError?: ((error: Error) => void) | undefined;
  /**
   * How long after reporting a file to look at it once more (default 25 ms).
   * chokidar drops a change that comes within 5 ms of the previous one and
   * has no trailing edge, so the last write of a burst could otherwise go
   * unreported until the file is written again.
   */
  readonly recheckMs?: number | undefined;
}

interface Stamp {
  readonly size: number;
  readonly mtimeMs: number;
  readonly ino: number;
}

const stampOf = (s: Stats): Stamp => ({ size: s.size, mtimeMs: s.mtimeMs, ino: s.ino });
const sameStamp = (a: Stamp, b: Stamp): boolean =>
  a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino;

function checkFunction(name: string, value: unknown, optional: boolean): void {
  if (value === undefined && optional) return;
  if (typeof value !== 'function') {
    throw new TypeError(
      `${name} must be a function, got ${value === null ? 'null' : typeof value}`,
    );
  }
}

/**
 * Reports file changes under a folder as `{ key, kind }` the moment the file
 * system tells (chokidar over fs.watch/inotify): no awaitWriteFinish, no
 * stability threshold and no atomic-write delay, because shared/DESIGN.md
 * ("Scheduling") has the watcher add at most ~100 ms and never wait for a
 * file to stop changing; the scheduler's debounce does the coalescing. The
 * same rules as the scanner apply (globs, state folder, `.git`, NFC keys,
 * the protocol's key rules), so watch and scan never disagree on a key.
 */
export class FolderWatcher {
  readonly root: string;
  readonly filter: PathFilter;
  readonly #watcher: FSWatcher;
  readonly #ready: Promise<void>;
  readonly #follow: boolean;
  readonly #options: FolderWatcherOptions;
  readonly #recheckMs: number;
  /** Per reported key: the stamp it was reported with, and the pending recheck. */
  readonly #reported = new Map<
    string,
    { stamp: Stamp | undefined; timer: NodeJS.Timeout | undefined }
  >();
  #closed = false;

  constructor(options: FolderWatcherOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(`options must be { root, onChange, ... }, got ${String(options)}`);
    }
    checkFunction('onChange', options.onChange, false);
    checkFunction('onSkip', options.onSkip, true);
    checkFunction('onError', options.onError, true);
    if (options.followSymlinks !== undefined && typeof options.followSymlinks !== 'boolean') {
      throw new TypeError(
        `followSymlinks must be a boolean, got ${JSON.stringify(options.followSymlinks)}`,
      );
    }
    this.filter =
      options.filter ??
      new PathFilter({
        root: options.root,
        stateDir: options.stateDir ?? join(resolve(options.root), '.upsync'),
        include: options.include,
        exclude: options.exclude,
      });
    this.root = this.filter.root;
    const recheckMs = options.recheckMs ?? 25;
    if (!Number.isFinite(recheckMs) || recheckMs < 0) {
      throw new TypeError(`recheckMs must be a number >= 0, got ${String(recheckMs)}`);
    }
    this.#recheckMs = recheckMs;
    this.#follow = options.followSymlinks ?? false;
    this.#options = options;
    this.#watcher = watch(this.root, {
      ignoreInitial: true,
      persistent: true,
      followSymlinks: this.#follow,
      alwaysStat: true,
      // chokidar's atomic mode delays unlinks by 100 ms and silently drops
      // editor-looking names (`*~`, `.*.swp`) that the scanner would sync.
      atomic: false,
      awaitWriteFinish: false,
      ignorePermissionErrors: false,
      ignored: (path: string) => {
        const key = this.#keyOf(path);
        return key !== undefined && this.filter.excludes(key);
      },
    });
    this.#ready = new Promise<void>((resolveReady, rejectReady) => {
      this.#watcher.once('ready', () => resolveReady());
      this.#watcher.once('error', (error) => rejectReady(error as Error));
    });
    // Keep an unawaited rejection from crashing the process; ready() reports it.
    this.#ready.catch(() => {});
    this.#watcher.on('add', (path: string, stats?: Stats) => void this.#onPut(path, stats));
    this.#watcher.on('change', (path: string, stats?: Stats) => void this.#onPut(path, stats));
    this.#watcher.on('unlink', (path: string) => this.#onDelete(path));
    this.#watcher.on('error', (error: unknown) => {
      if (!this.#closed)
        this.#options.onError?.(error instanceof Error ? error : new Error(String(error)));
    });
  }

  /** Resolves once the initial crawl is done: changes from then on are reported. */
  async ready(options: { signal?: AbortSignal | undefined } = {}): Promise<void> {
    if (this.#closed) throw new ClosedError('the folder watcher is closed');
    const signal = options.signal;
    if (!signal) return this.#ready;
    signal.throwIfAborted();
    let onAbort!: () => void;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(signal.reason as Error);
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      await Promise.race([this.#ready, aborted]);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** The key of a path under the root (undefined for the root itself). */
  #keyOf(path: string): string | undefined {
    const rel = relative(this.root, path);
    if (rel === '' || rel.startsWith('..')) return undefined;
    return rel.split(sep).join('/').normalize('NFC');
  }

  #skip(key: string, path: string, code: SkippedEntry['code'], reason: string): void {
    this.#options.onSkip?.({ type: 'skipped', key, path, folder: false, code, reason });
  }

  async #onPut(path: string, stats: Stats | undefined): Promise<void> {
    const key = this.#keyOf(path);
    if (this.#closed || key === undefined || !this.filter.accepts(key)) return;
    if (!this.#follow) {
      // chokidar reports a link it does not follow as a file; the scanner skips those.
      let linkStats = stats;
      if (linkStats === undefined) {
        try {
          linkStats = await lstat(path);
        } catch {
          return; // gone already: its unlink follows
        }
      }
      if (linkStats.isSymbolicLink()) {
        this.#skip(key, path, 'SYMLINK', 'a symbolic link; links are not followed unless asked to');
        return;
      }
    }
    if (key.includes('\uFFFD')) {
      // Node decodes a name that is not UTF-8 with U+FFFD, and that string names no file.
      try {
        await lstat(path);
      } catch {
        this.#skip(
          key,
          path,
          'BAD_NAME',
          'the name is not valid UTF-8, so it cannot be a key; rename it',
        );
        return;
      }
    }
    const problem = keyProblem(key);
    if (problem !== undefined) {
      this.#skip(key, path, 'BAD_KEY', problem);
      return;
    }
    this.#put(key, path, stats);
  }

  #put(key: string, path: string, stats: Stats | undefined): void {
    if (this.#closed) return;
    const entry = this.#reported.get(key) ?? { stamp: undefined, timer: undefined };
    entry.stamp = stats ? stampOf(stats) : undefined;
    entry.timer ??= setTimeout(() => void this.#recheck(key, path), this.#recheckMs);
    this.#reported.set(key, entry);
    this.#options.onChange({ key, kind: 'put', path });
  }

  /** Reports the file again if it changed since it was last reported (a write chokidar dropped). */
  async #recheck(key: string, path: string): Promise<void> {
    const entry = this.#reported.get(key);
    if (!entry || this.#closed) return;
    entry.timer = undefined;
    let stats: Stats;
    try {
      stats = await (this.#follow ? stat : lstat)(path);
    } catch {
      this.#reported.delete(key);
      return; // gone: its unlink is reported by chokidar
    }
    if (this.#closed || this.#reported.get(key) !== entry || entry.timer !== undefined) return;
    if (entry.stamp !== undefined && sameStamp(entry.stamp, stampOf(stats))) {
      this.#reported.delete(key);
      return;
    }
    this.#put(key, path, stats);
  }

  #onDelete(path: string): void {
    const key = this.#keyOf(path);
    if (this.#closed || key === undefined || !this.filter.accepts(key)) return;
    if (keyProblem(key) !== undefined) return;
    const entry = this.#reported.get(key);
    if (entry) {
      clearTimeout(entry.timer);
      this.#reported.delete(key);
    }
    this.#options.onChange({ key, kind: 'delete', path });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const entry of this.#reported.values()) clearTimeout(entry.timer);
    this.#reported.clear();
    await this.#watcher.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
