import { isAbsolute, relative, resolve, sep } from 'node:path';
import picomatch from 'picomatch';
import { ConfigError } from '@upsync/core';

export interface PathFilterOptions {
  /** The folder being synced; keys are relative to it. */
  readonly root: string;
  /** The state folder; excluded with everything in it when it lies inside `root`. */
  readonly stateDir?: string | undefined;
  /**
   * Globs (picomatch syntax) a file's key must match, or one of its folders
   * must match, to be synced; default every file. A pattern without "/"
   * matches a name at any depth (`*.log`, `node_modules`); a leading "/"
   * anchors it at the root.
   */
  readonly include?: readonly string[] | undefined;
  /** Globs, read as for `include`, that leave out a file or a whole folder. */
  readonly exclude?: readonly string[] | undefined;
}

type Matcher = (key: string) => boolean;

/** Folders never synced, whatever the globs say. */
const ALWAYS_EXCLUDED_NAMES = new Set(['.git']);

/**
 * upsync's own settings file at the root: it configures the sync rather than
 * being part of what is synced, and it may name a token file's path.
 */
export const CONFIG_FILE_NAME = 'upsync.config.json';

function compile(name: string, patterns: readonly string[] | undefined): Matcher | undefined {
  if (patterns === undefined) return undefined;
  if (!Array.isArray(patterns)) {
    throw new TypeError(
      `${name} must be an array of glob strings, got ${JSON.stringify(patterns)}`,
    );
  }
  if (patterns.length === 0) return undefined;
  const normalized = patterns.map((pattern: unknown) => {
    if (typeof pattern !== 'string' || pattern.trim() === '') {
      throw new TypeError(
        `${name} patterns must be non-empty strings, got ${JSON.stringify(pattern)}`,
      );
    }
    // Keys are NFC, so a pattern typed on a system that produces NFD must be too.
    let p = pattern.normalize('NFC').replace(/^\.\//, '');
    while (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
    if (p.startsWith('/')) return p.slice(1);
    return p.includes('/') ? p : `**/${p}`;
  });
  return picomatch(normalized, { dot: true });
}

/** A key's folders, outermost first: `a/b/c` gives `a`, `a/b`. */
function* ancestors(key: string): Generator<string> {
  for (let i = key.indexOf('/'); i !== -1; i = key.indexOf('/', i + 1)) yield key.slice(0, i);
}

/**
 * The include/exclude rules shared by the scanner and the watcher, so that a
 * file the scan leaves out never arrives through a watch event either.
 */
export class PathFilter {
  readonly root: string;
  /** The state folder's key, when it lies inside the root. */
  readonly stateKey: string | undefined;
  readonly #include: Matcher | undefined;
  readonly #exclude: Matcher | undefined;

  constructor(options: PathFilterOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(`options must be { root, ... }, got ${String(options)}`);
    }
    if (typeof options.root !== 'string' || options.root === '') {
      throw new TypeError(`root must be a non-empty string, got ${JSON.stringify(options.root)}`);
    }
    if (
      options.stateDir !== undefined &&
      (typeof options.stateDir !== 'string' || options.stateDir === '')
    ) {
      throw new TypeError(
        `stateDir must be a non-empty string, got ${JSON.stringify(options.stateDir)}`,
      );
    }
    this.root = resolve(options.root);
    this.#include = compile('include', options.include);
    this.#exclude = compile('exclude', options.exclude);
    if (options.stateDir !== undefined) {
      const rel = relative(this.root, resolve(options.stateDir));
      if (rel === '') {
        throw new ConfigError(
          `the state folder ${options.stateDir} is the folder being synced; choose another --state folder`,
        );
      }
      this.stateKey =
        rel.startsWith('..') || isAbsolute(rel)
          ? undefined
          : rel.split(sep).join('/').normalize('NFC');
    } else {
      this.stateKey = undefined;
    }
  }

  /** Whether a folder or file is left out by its own name alone (its folders not looked at). */
  excludesSelf(key: string): boolean {
    const slash = key.lastIndexOf('/');
    if (ALWAYS_EXCLUDED_NAMES.has(key.slice(slash + 1))) return true;
    if (key === this.stateKey || key === CONFIG_FILE_NAME) return true;
    return this.#exclude?.(key) ?? false;
  }

  /** Whether a path, or a folder above it, is excluded: what the watcher must not even watch. */
  excludes(key: string): boolean {
    for (const folder of ancestors(key)) if (this.excludesSelf(folder)) return true;
    return this.excludesSelf(key);
  }

  /** Whether the include globs take the file in: its key, or one of its folders, matches. */
  includes(key: string): boolean {
    const include = this.#include;
    if (!include) return true;
    if (include(key)) return true;
    for (const folder of ancestors(key)) if (include(folder)) return true;
    return false;
  }

  /** Whether a file with this key is synced. */
  accepts(key: string): boolean {
    return this.includes(key) && !this.excludes(key);
  }
}
