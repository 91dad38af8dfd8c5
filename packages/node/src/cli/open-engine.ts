import { userInfo } from 'node:os';
import { join } from 'node:path';
import {
  applyMiddleware,
  composeTransport,
  DEFAULT_RESWEEP_MS,
  Engine,
  isUpsyncError,
  retryMiddleware,
  StateError,
  Stats,
  TransportMonitor,
  UpsyncHttpRemote,
  type OutboxScope,
} from '@upsync/core';
import { SqliteOutboxStore } from '../outbox/sqlite-store.ts';
import { UndiciTransport } from '../remote/undici-transport.ts';
import { FolderFileAccess } from '../source/folder-file-access.ts';
import { FolderSource } from '../source/folder-source.ts';
import type { CliIo } from './main.ts';
import type { SyncOptions } from './sync-options.ts';

/**
 * The lease and lock owner of every CLI process. Stable, so that a process
 * that starts after one was killed can free the leases the dead one left
 * (it holds the state folder's lock, so no live sender owns them) instead of
 * waiting a whole lease out.
 */
const CLI_OWNER = 'upsync-cli';

/**
 * The outbox scope's principal: who the pending changes belong to. It names
 * the user, not the credential: `UPSYNC_PRINCIPAL` when set, else the OS user.
 * A rotated or corrected token keeps its owner's pending changes (a scope
 * derived from the token would strand them), while another user sharing the
 * state folder never sends them with their own token.
 */
export function principalOf(env: NodeJS.ProcessEnv = process.env): string {
  const given = env['UPSYNC_PRINCIPAL']?.trim();
  if (given) return given;
  try {
    return `os-user:${userInfo().username}`;
  } catch {
    // No passwd entry (some containers): the uid still tells users apart.
    return `os-uid:${process.getuid?.() ?? 'unknown'}`;
  }
}

export interface OpenedEngine {
  readonly engine: Engine;
  readonly source: FolderSource;
  readonly store: SqliteOutboxStore;
  readonly scope: OutboxScope;
  readonly stats: Stats;
  /** The transport's per-host pacing (rate, concurrency, breaker), for the panel. */
  readonly monitor: TransportMonitor;
  /** Closes the source, the store and the connection pool (after engine.shutdown()). */
  close(): Promise<void>;
}

function asStateError(error: unknown, what: string): unknown {
  if (isUpsyncError(error)) return error;
  return new StateError(`${what}: ${(error as Error)?.message ?? String(error)}`, { cause: error });
}

/** Frees leases a killed CLI process left, while holding the lock (so no live sender has them). */
async function freeStaleLeases(store: SqliteOutboxStore, scope: OutboxScope): Promise<void> {
  const lock = await store.lock(CLI_OWNER);
  try {
    const now = Date.now();
    const stale = [];
    for await (const row of store.pendingEntries(scope)) {
      if (row.leaseOwner === CLI_OWNER && (row.leaseExpiresAtMs ?? 0) > now) stale.push(row);
    }
    for (const row of stale) {
      await store.release(scope, row.key, row.seq, {
        owner: CLI_OWNER,
        nextAttemptAtMs: row.nextAttemptAtMs,
      });
    }
  } finally {
    await lock.release();
  }
}

/**
 * Builds what `sync` and `run` share: the SQLite outbox in the state folder,
 * the folder source, the HTTP remote (one attempt per engine attempt; the
 * listing through the retry middleware) and the engine, started (it holds
 * the state folder's lock). A damaged or locked state folder is a StateError.
 */
export async function openEngine(
  options: SyncOptions,
  io: CliIo,
  engineOverrides: { debounceMs?: number } = {},
): Promise<OpenedEngine> {
  const scope: OutboxScope = {
    remote: options.remote,
    project: options.project,
    principal: principalOf(),
  };
  let store: SqliteOutboxStore;
  try {
    store = new SqliteOutboxStore({ path: join(options.stateDir, 'outbox.db') });
  } catch (error) {
    throw asStateError(error, `the state folder ${options.stateDir} cannot be used`);
  }
  let source: FolderSource | undefined;
  const undici = new UndiciTransport();
  const closeAll = async (): Promise<void> => {
    await source?.close();
    await store.close();
    await undici.close();
  };
  try {
    source = new FolderSource({ root: options.dir, stateDir: options.stateDir });
    await freeStaleLeases(store, scope);
    const stats = new Stats();
    const monitor = new TransportMonitor();
    const transport = composeTransport(undici.send, {
      stats,
      auth: { token: options.token },
      retry: false,
      concurrency: { max: options.concurrency },
      ...(options.ratePerSec === undefined
        ? {}
        : {
            rateLimit: {
              ratePerSec: options.ratePerSec,
              ...(options.burst === undefined ? {} : { burst: options.burst }),
            },
          }),
    });
    // The listing is tried 3 times by the engine; each try retries within a third of the budget.
    const listingTransport = applyMiddleware(transport, [
      retryMiddleware({
        stats,
        maxAttempts: Math.min(options.attempts, 3),
        maxTimeMs: options.retryTimeMs / 3,
      }),
    ]);
    const remote = new UpsyncHttpRemote({
      url: options.remote,
      project: options.project,
      transport,
    });
    const listingRemote = new UpsyncHttpRemote({
      url: options.remote,
      project: options.project,
      transport: listingTransport,
    });
    const engine = new Engine({
      store,
      scope,
      remote,
      listingRemote,
      stats,
      owner: CLI_OWNER,
      concurrency: options.concurrency,
      attempts: options.attempts,
      retryTimeMs: options.retryTimeMs,
      // `run` keeps going through an outage: what timed out is sent again once the remote is back.
      resweepMs: options.command === 'run' ? DEFAULT_RESWEEP_MS : 0,
      files: new FolderFileAccess(source),
      settings: { leading: true, intervalMs: engineOverrides.debounceMs ?? options.debounceMs },
      logger: {
        warn: (message, details) =>
          io.stderr(
            `upsync ${options.command}: ${message}${details === undefined ? '' : `: ${String((details as Error)?.message ?? details)}`}\n`,
          ),
      },
    });
    await engine.start();
    const opened: OpenedEngine = { engine, source, store, scope, stats, monitor, close: closeAll };
    return opened;
  } catch (error) {
    await closeAll().catch(() => {});
    throw asStateError(error, `the state folder ${options.stateDir} cannot be used`);
  }
}
