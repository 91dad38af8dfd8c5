import { lstat, readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ConfigError, compareKeys } from '@upsync/core';
import { keyProblem } from '@upsync/core';
import { PathFilter } from './path-filter.ts';

/** The parts of `fs.Stats` the scanner reads. */
export interface ScanStats {
  readonly size: number;
  readonly mtimeMs: number;
  readonly ino: number;
  readonly dev: number;
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
}

/** The file system calls the scanner makes; tests replace them to simulate EACCES as root. */
export interface ScanFs {
  /** The raw bytes of each name in a folder, so a name that is not UTF-8 can be reported. */
  readdir(path: string): Promise<readonly Uint8Array[]>;
  lstat(path: string): Promise<ScanStats>;
  stat(path: string): Promise<ScanStats>;
}

export const nodeScanFs: ScanFs = {
  readdir: (path) => readdir(path, { encoding: 'buffer' }),
  lstat: (path) => lstat(path),
  stat: (path) => stat(path),
};

/** A regular file the scan found and the rules accept. */
export interface ScannedFile {
  readonly type: 'file';
  /** Relative POSIX path in Unicode NFC: the item's key. */
  readonly key: string;
  /** Where the file is on disk (its name as the disk spells it, which may be NFD). */
  readonly path: string;
  readonly size: number;
  readonly mtimeMs: number;
  readonly ino: number;
}

/**
 * Why an entry was not synced:
 * - `BAD_NAME`: the name is not valid UTF-8, so it has no key.
 * - `BAD_KEY`: the key breaks the protocol's key rules (too long, control character, backslash).
 * - `DUPLICATE_KEY`: another name in the folder has the same NFC form (one NFC, one NFD).
 * - `SYMLINK`: a symbolic link, and links are not followed.
 * - `SYMLINK_LOOP`: a followed link leads back to a folder above it.
 * - `NOT_A_FILE`: a socket, FIFO or device, or a link to one.
 * - `UNREADABLE`: the file system refused to list or stat it (`errno` says why: EACCES, EIO, ...).
 */
export type SkipCode =
  | 'BAD_NAME'
  | 'BAD_KEY'
  | 'DUPLICATE_KEY'
  | 'SYMLINK'
  | 'SYMLINK_LOOP'
  | 'NOT_A_FILE'
  | 'UNREADABLE';

/** An entry the scan saw but does not sync, with the reason, so nothing is left out silently. */
export interface SkippedEntry {
  readonly type: 'skipped';
  /** The key it has or would have (a lossy rendering, with U+FFFD, for `BAD_NAME`). */
  readonly key: string;
  readonly path: string;
  /** A folder: everything under it went unseen, so none of it may be taken as deleted. */
  readonly folder: boolean;
  readonly code: SkipCode;
  /** The system error code for `UNREADABLE` (EACCES, EPERM, EIO, ...). */
  readonly errno?: string;
  readonly reason: string;
}

export type ScanEntry = ScannedFile | SkippedEntry;

export interface ScanFolderOptions {
  readonly root: string;
  /** The state folder (default `<root>/.upsync`); never scanned. */
  readonly stateDir?: string | undefined;
  readonly include?: readonly string[] | undefined;
  readonly exclude?: readonly string[] | undefined;
  /** Follow symbolic links to files and folders (default false); a link back up is a loop and skipped. */
  readonly followSymlinks?: boolean | undefined;
  /** A filter built elsewhere (the FolderSource shares one with its watcher); overrides the glob options. */
  readonly filter?: PathFilter | undefined;
  readonly fs?: ScanFs | undefined;
  readonly signal?: AbortSignal | undefined;
}

/** How many entries of one folder are stat'ed at once. */
const STAT_CONCURRENCY = 32;
const utf8 = new TextDecoder('utf-8', { fatal: true });
const lossy = new TextDecoder('utf-8');

type Skip = Omit<SkippedEntry, 'type' | 'key' | 'path'>;

interface Child {
  readonly name: string;
  readonly key: string;
  readonly path: string;
  /** Sorting a folder as `name/` makes a depth-first walk come out in key order. */
  readonly sortKey: string;
  readonly kind: 'file' | 'folder' | 'skipped';
  readonly stats?: ScanStats;
  readonly skip?: Skip;
}

function errnoOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Gone between listing and stat: not an error, the file is simply not there any more. */
function isGone(error: unknown): boolean {
  const code = errnoOf(error);
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function unreadable(error: unknown, folder: boolean, what: string): Skip {
  const errno = errnoOf(error) ?? 'UNKNOWN';
  const message = error instanceof Error ? error.message : String(error);
  return { folder, code: 'UNREADABLE', errno, reason: `cannot ${what}: ${message}` };
}

/**
 * Walks `root` and yields every regular file the rules accept, in key order
 * (compareKeys: the protocol's UTF-8 byte order), and every entry it had to
 * leave out with the reason. Errors on one entry never end the scan; only a
 * root that cannot be listed does (ConfigError), since an empty result would
 * read as "everything was deleted".
 */
export async function* scanFolder(options: ScanFolderOptions): AsyncGenerator<ScanEntry> {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`options must be { root, ... }, got ${String(options)}`);
  }
  if (options.followSymlinks !== undefined && typeof options.followSymlinks !== 'boolean') {
    throw new TypeError(
      `followSymlinks must be a boolean, got ${JSON.stringify(options.followSymlinks)}`,
    );
  }
  const filter =
    options.filter ??
    new PathFilter({
      root: options.root,
      stateDir: options.stateDir ?? join(resolve(options.root), '.upsync'),
      include: options.include,
      exclude: options.exclude,
    });
  const root = filter.root;
  const fs = options.fs ?? nodeScanFs;
  const follow = options.followSymlinks ?? false;
  const signal = options.signal;
  signal?.throwIfAborted();

  let rootStats: ScanStats;
  try {
    rootStats = await fs.stat(root);
  } catch (error) {
    throw new ConfigError(`cannot read the folder ${root}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (!rootStats.isDirectory()) throw new ConfigError(`${root} is not a folder`);
  let rootNames: readonly Uint8Array[];
  try {
    rootNames = await fs.readdir(root);
  } catch (error) {
    throw new ConfigError(`cannot list the folder ${root}: ${(error as Error).message}`, {
      cause: error,
    });
  }

  const identity = (s: ScanStats): string => `${s.dev}:${s.ino}`;

  async function children(
    dirPath: string,
    dirKey: string,
    names: readonly Uint8Array[],
  ): Promise<Child[]> {
    const prefix = dirKey === '' ? '' : `${dirKey}/`;
    const decoded: Array<{ name: string; nfc: string; ok: boolean }> = names.map((raw) => {
      try {
        const name = utf8.decode(raw);
        return { name, nfc: name.normalize('NFC'), ok: true };
      } catch {
        const name = lossy.decode(raw);
        return { name, nfc: name.normalize('NFC'), ok: false };
      }
    });
    // One name per NFC form: the one already in NFC wins, else the first in key order.
    const winners = new Map<string, string>();
    for (const { name, nfc, ok } of decoded) {
      if (!ok) continue;
      const current = winners.get(nfc);
      if (
        current === undefined ||
        (name === nfc && current !== nfc) ||
        (current !== nfc && compareKeys(name, current) < 0)
      ) {
        winners.set(nfc, name);
      }
    }

    const result: Child[] = [];
    for (let i = 0; i < decoded.length; i += STAT_CONCURRENCY) {
      signal?.throwIfAborted();
      const batch = decoded.slice(i, i + STAT_CONCURRENCY);
      const settled = await Promise.all(
        batch.map(async ({ name, nfc, ok }): Promise<Child | undefined> => {
          const key = prefix + nfc;
          const path = join(dirPath, name);
          const base = { name, key, path };
          if (filter.excludesSelf(key)) return undefined;
          if (!ok) {
            return {
              ...base,
              sortKey: nfc,
              kind: 'skipped',
              skip: {
                folder: false,
                code: 'BAD_NAME',
                reason: 'the name is not valid UTF-8, so it cannot be a key; rename it',
              },
            };
          }
          if (winners.get(nfc) !== name) {
            return {
              ...base,
              sortKey: nfc,
              kind: 'skipped',
              skip: {
                folder: false,
                code: 'DUPLICATE_KEY',
                reason: `another name in the folder has the same Unicode NFC form (${JSON.stringify(
                  winners.get(nfc),
                )}); only that one is synced`,
              },
            };
          }
          let stats: ScanStats;
          try {
            stats = await fs.lstat(path);
          } catch (error) {
            if (isGone(error)) return undefined;
            return {
              ...base,
              sortKey: nfc,
              kind: 'skipped',
              skip: unreadable(error, false, 'stat it'),
            };
          }
          if (stats.isSymbolicLink()) {
            if (!follow) {
              return {
                ...base,
                sortKey: nfc,
                kind: 'skipped',
                skip: {
                  folder: false,
                  code: 'SYMLINK',
                  reason: 'a symbolic link; links are not followed unless asked to',
                },
              };
            }
            try {
              stats = await fs.stat(path);
            } catch (error) {
              return {
                ...base,
                sortKey: nfc,
                kind: 'skipped',
                skip: {
                  ...unreadable(error, false, 'follow the link'),
                  ...(isGone(error)
                    ? { reason: 'a broken symbolic link (its target is missing)' }
                    : {}),
                },
              };
            }
          }
          if (stats.isDirectory()) return { ...base, sortKey: `${nfc}/`, kind: 'folder', stats };
          if (stats.isFile()) return { ...base, sortKey: nfc, kind: 'file', stats };
          return {
            ...base,
            sortKey: nfc,
            kind: 'skipped',
            skip: {
              folder: false,
              code: 'NOT_A_FILE',
              reason: 'not a regular file (socket, FIFO or device)',
            },
          };
        }),
      );
      for (const child of settled) if (child) result.push(child);
    }
    return result.sort((a, b) => compareKeys(a.sortKey, b.sortKey) || compareKeys(a.name, b.name));
  }

  async function* walk(
    dirPath: string,
    dirKey: string,
    names: readonly Uint8Array[],
    above: ReadonlySet<string>,
  ): AsyncGenerator<ScanEntry> {
    for (const child of await children(dirPath, dirKey, names)) {
      signal?.throwIfAborted();
      const { key, path } = child;
      if (child.kind === 'skipped') {
        // A file the include globs would not take is no loss when it cannot be read.
        if (child.skip!.folder || filter.includes(key)) {
          yield { type: 'skipped', key, path, ...child.skip! };
        }
        continue;
      }
      const problem = keyProblem(key);
      if (problem !== undefined) {
        yield {
          type: 'skipped',
          key,
          path,
          folder: child.kind === 'folder',
          code: 'BAD_KEY',
          reason: problem,
        };
        continue;
      }
      const stats = child.stats!;
      if (child.kind === 'file') {
        if (filter.includes(key)) {
          yield {
            type: 'file',
            key,
            path,
            size: stats.size,
            mtimeMs: stats.mtimeMs,
            ino: stats.ino,
          };
        }
        continue;
      }
      const id = identity(stats);
      if (above.has(id)) {
        yield {
          type: 'skipped',
          key,
          path,
          folder: true,
          code: 'SYMLINK_LOOP',
          reason: 'a symbolic link leads back to a folder above it',
        };
        continue;
      }
      let childNames: readonly Uint8Array[];
      try {
        childNames = await fs.readdir(path);
      } catch (error) {
        if (isGone(error)) continue;
        yield { type: 'skipped', key, path, ...unreadable(error, true, 'list the folder') };
        continue;
      }
      yield* walk(path, key, childNames, new Set(above).add(id));
    }
  }

  yield* walk(root, '', rootNames, new Set([identity(rootStats)]));
}
