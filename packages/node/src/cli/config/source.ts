import { isAbsolute, relative } from 'node:path';

/** Where an effective value came from, highest layer first. */
export type Source =
  | { readonly kind: 'flag'; readonly flag: string }
  | { readonly kind: 'env'; readonly variable: string }
  | { readonly kind: 'file'; readonly path: string; readonly shown: string }
  | { readonly kind: 'default' };

const RANK: Readonly<Record<Source['kind'], number>> = { flag: 3, env: 2, file: 1, default: 0 };

/** Higher beats lower: a flag beats the environment, which beats the file, which beats the default. */
export function rankOf(source: Source): number {
  return RANK[source.kind];
}

/** The short name a message quotes after "from": `--concurrency`, `UPSYNC_RATE`, `upsync.config.json`. */
export function sourceName(source: Source): string {
  switch (source.kind) {
    case 'flag':
      return source.flag;
    case 'env':
      return source.variable;
    case 'file':
      return source.shown;
    case 'default':
      return 'the default';
  }
}

/** The label `upsync config` shows: `flag --x`, `env UPSYNC_X`, `file <path>`, `default`. */
export function sourceLabel(source: Source): string {
  switch (source.kind) {
    case 'flag':
      return `flag ${source.flag}`;
    case 'env':
      return `env ${source.variable}`;
    case 'file':
      return `file ${source.shown}`;
    case 'default':
      return 'default';
  }
}

/** A path as the user would write it from `cwd`: relative inside it, absolute outside. */
export function showPath(path: string, cwd: string): string {
  const rel = relative(cwd, path);
  return rel === '' || rel.startsWith('..') || isAbsolute(rel) ? path : rel;
}
