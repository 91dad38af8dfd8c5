import { userInfo } from 'node:os';
import { isAbsolute, join, relative, sep } from 'node:path';
import type { Logger } from 'pino';
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
import { LAST_RUN_REFRESH_MS, LastRunFile } from './last-run.ts';
import { logEngineEvents, openStateLogger, secretScrubber, type StateLogger } from './logger.ts';
import type { CliIo } from './main.ts';
import type { SyncOptions } from './sync-options.ts';

/**
 * The lease and lock owner of every CLI process. Stable, so that a process
 * that starts after one was killed can free the leases the dead one left
 * (it holds the state folder's lock, so no live sender owns them) instead of
 * waiting a whole lease out.
 */
export const CLI_OWNER = 'upsync-cli';

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
  /** The state folder's structured log (`<state>/upsync.log`); the token never reaches it. */
  readonly log: Logger;
  /**
   * After engine.shutdown(): writes the final `last-run.json` (the engine's
   * report: outcome counts, whether everything arrived), then closes the log,
   * the source, the store and the connection pool. Idempotent.
   */
  close(): Promise<void>;
}

export interface OpenEngineOverrides {
  debounceMs?: number;
  /** The command named in the log and `last-run.json`; default `options.command`. */
  label?: string;
  /** The scope's principal; default {@link principalOf} the process's environment. */
  principal?: string;
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
 * Anchored literal globs for upsync's own files inside the folder: a token
 * file kept beside the data must never be uploaded with it.
 */
export function ownFileGlobs(dir: string, files: readonly string[]): string[] | undefined {
  const globs = files
    .map((file) => relative(dir, file))
    .filter((rel) => rel !== '' && !rel.startsWith('..') && !isAbsolute(rel))
    .map(
      (rel) =>
        `/${rel
          .split(sep)
          .join('/')
          .replace(/[\\*?[\]{}()!+@|]/g, '\\$&')}`,
    );
  return globs.length === 0 ? undefined : globs;
}

/**
 * Builds what `sync` and `run` share: the SQLite outbox in the state folder,
 * the folder source, the HTTP remote (one attempt per engine attempt; the
 * listing through the retry middleware) and the engine, started (it holds
 * the state folder's lock). Once it holds the lock it opens the state
 * folder's log and writes `last-run.json` (refreshed every 5 s). A damaged or
 * locked state folder is a StateError.
 */
export async function openEngine(
  options: SyncOptions,
  io: CliIo,
  overrides: OpenEngineOverrides = {},
): Promise<OpenedEngine> {
  const label = overrides.label ?? options.command;
  const scope: OutboxScope = {
    remote: options.remote,
    project: options.project,
    principal: overrides.principal ?? principalOf(),
  };
  const scrub = secretScrubber([options.token]);
  let store: SqliteOutboxStore;
  try {
    store = new SqliteOutboxStore({ path: join(options.stateDir, 'outbox.db') });
  } catch (error) {
    throw asStateError(error, `the state folder ${options.stateDir} cannot be used`);
  }
  let source: FolderSource | undefined;
  // Both exist only once the lock is held: a process refused by the lock must
  // not rotate the log or overwrite the record of the one that holds it.
  let stateLog: StateLogger | undefined;
  let lastRun: LastRunFile | undefined;
  let engine: Engine | undefined;
  let heartbeat: ReturnType<typeof setInterval> | undefined;
  let offEvents = (): void => {};
  const undici = new UndiciTransport();
  const closeResources = async (): Promise<void> => {
    clearInterval(heartbeat);
    offEvents();
    await source?.close();
    await store.close();
    await undici.close();
    await stateLog?.close();
  };
  const finish = async (): Promise<void> => {
    clearInterval(heartbeat);
    if (!engine || !lastRun || !stateLog) return;
    const report = engine.report();
    const status = await engine.status().catch(() => null);
    lastRun.finish(report, status);
    const record = lastRun.record;
    stateLog.logger.info(
      {
        event: 'finished',
        outcome: record.outcome,
        allArrived: record.allArrived,
        paused: record.paused,
      },
      'finished',
    );
  };
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      try {
        await finish();
      } finally {
        await closeResources();
      }
    })();
    return closing;
  };
  try {
    source = new FolderSource({
      root: options.dir,
      stateDir: options.stateDir,
      exclude: ownFileGlobs(options.dir, options.ownFiles),
    });
    await freeStaleLeases(store, scope);
    const stats = new Stats();
    const monitor = new TransportMonitor();
    const transport = composeTransport(undici.send, {
      stats,
      monitor,
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
    engine = new Engine({
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
      settings: { leading: true, intervalMs: overrides.debounceMs ?? options.debounceMs },
      logger: {
        warn: (message, details) => {
          stateLog?.logger.warn({ err: details }, message);
          io.stderr(
            scrub(
              `upsync ${label}: ${message}${details === undefined ? '' : `: ${String((details as Error)?.message ?? details)}`}\n`,
            ),
          );
        },
      },
    });
    await engine.start();
    stateLog = openStateLogger({
      stateDir: options.stateDir,
      level: options.logLevel,
      secrets: [options.token],
      base: { command: label },
    });
    const log = stateLog.logger;
    offEvents = logEngineEvents(engine, log);
    log.info(
      {
        event: 'started',
        dir: options.dir,
        remote: options.remote,
        project: options.project,
        principal: scope.principal,
      },
      `${label} started`,
    );
    const record = new LastRunFile({
      stateDir: options.stateDir,
      identity: { command: label, ...scope },
      onError: (error) => log.warn({ err: error }, 'last-run.json could not be written'),
    });
    lastRun = record;
    record.start();
    const running = engine;
    heartbeat = setInterval(() => {
      running.status().then(
        (status) => record.refresh(status),
        (error: unknown) => log.warn({ err: error }, 'the status for last-run.json failed'),
      );
    }, LAST_RUN_REFRESH_MS);
    heartbeat.unref();
    return { engine, source, store, scope, stats, monitor, log, close };
  } catch (error) {
    await engine?.close().catch(() => {});
    await closeResources().catch(() => {});
    throw asStateError(error, `the state folder ${options.stateDir} cannot be used`);
  }
}
