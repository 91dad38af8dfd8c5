// Where the demo writes: one folder holding the sample, the state folder, the
// server's data and the commands' config file, so cleaning up is removing one
// folder.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ConfigError } from '@upsync/core';

export interface Workspace {
  readonly root: string;
  /** The folder the demo mirrors. */
  readonly sessions: string;
  /** The outbox and digest cache (outside the mirrored folder, so it is never watched). */
  readonly state: string;
  /** The reference server's SQLite metadata and body files. */
  readonly serverData: string;
  /**
   * An empty config file, named to \`sync\` and \`run\` with --config: they read
   * no upsync.config.json of the user's (nor would find one in the sample).
   */
  readonly config: string;
  /** Removes what the demo wrote: the root if the demo made it, else what is inside it. */
  remove(): void;
}

function isEmptyFolder(path: string): boolean {
  return statSync(path).isDirectory() && readdirSync(path).length === 0;
}

/**
 * A new temporary folder, or `dir`, which must not exist or be empty: the
 * demo removes what is in it at the end, so it must never be someone's folder.
 */
export function openWorkspace(dir: string | undefined): Workspace {
  let root: string;
  let made: boolean;
  if (dir === undefined) {
    root = mkdtempSync(join(tmpdir(), 'upsync-demo-'));
    made = true;
  } else {
    root = resolve(dir);
    let exists = true;
    try {
      if (!isEmptyFolder(root)) {
        throw new ConfigError(`--dir ${dir} is not an empty folder; give a new or empty one`);
      }
    } catch (error) {
      if (error instanceof ConfigError) throw error;
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') throw new ConfigError(`--dir ${dir}: ${code ?? 'cannot be used'}`);
      exists = false;
    }
    try {
      mkdirSync(root, { recursive: true });
    } catch (error) {
      throw new ConfigError(
        `--dir ${dir}: cannot create it: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
      );
    }
    made = !exists;
  }
  const sessions = join(root, 'sessions');
  const state = join(root, 'state');
  const serverData = join(root, 'server');
  const config = join(root, 'upsync.config.json');
  for (const folder of [sessions, state, serverData]) mkdirSync(folder);
  writeFileSync(config, '{}\n');
  return {
    root,
    sessions,
    state,
    serverData,
    config,
    remove() {
      const targets = made ? [root] : [sessions, state, serverData, config];
      for (const target of targets) {
        rmSync(target, { recursive: true, force: true, maxRetries: 3 });
      }
    },
  };
}
