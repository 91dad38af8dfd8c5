import { exitCode, type PauseInfo } from '@upsync/core';
import type { FolderChange, FolderWatcher } from '../source/folder-watcher.ts';
import { registerCommand, type CliIo } from './main.ts';
import { openEngine } from './open-engine.ts';
import { cliReport, printReport } from './print-report.ts';
import { reconcile } from './reconcile.ts';
import { progressLines } from './sync.ts';
import { parseSyncOptions, RUN_HELP } from './sync-options.ts';

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  /** Stops the command when aborted; default: the first SIGINT or SIGTERM. */
  stopSignal?: AbortSignal;
  /** Called once the first pass is done and the folder is watched (tests wait for it). */
  onReady?: () => void;
}

/** Resolves on `signal`'s abort, or on the first SIGINT/SIGTERM when no signal is given. */
function whenStopped(signal: AbortSignal | undefined, stop: AbortController): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    stop.signal.addEventListener('abort', done, { once: true });
    if (signal) {
      if (signal.aborted) done();
      signal.addEventListener('abort', done, { once: true });
      return;
    }
    process.on('SIGINT', done);
    process.on('SIGTERM', done);
  });
}

/**
 * `upsync run [DIR]`: a first pass like `sync`, then every change the watcher
 * reports goes to the engine as known new (no existence check) through the
 * per-key debounce. Stopped, it sends what is queued, waits up to
 * --shutdown-timeout, and exits 0 only if everything arrived.
 */
export async function run(args: string[], io: CliIo, runOptions: RunOptions = {}): Promise<number> {
  const options = parseSyncOptions('run', args, runOptions.env ?? process.env);
  if (!options) {
    io.stdout(RUN_HELP);
    return 0;
  }
  const name = 'upsync run';
  const opened = await openEngine(options, io);
  const { engine, source } = opened;
  const stopProgress = progressLines(name, opened, io);
  // Ends the command from inside: the remote refused the token or has no such project.
  const stopFromInside = new AbortController();
  const state: { paused: PauseInfo | null } = { paused: null };
  const offPaused = engine.on('paused', (info) => {
    if (info.reason === 'auth' || info.reason === 'project') {
      state.paused = info;
      stopFromInside.abort();
    }
  });
  const stopped = whenStopped(runOptions.stopSignal, stopFromInside);
  // One chain per key, so two quick changes of a file reach the engine in the order they happened.
  const chains = new Map<string, Promise<void>>();
  const inFlight = new Set<Promise<void>>();
  const handle = async (change: FolderChange): Promise<void> => {
    if (change.kind === 'put') {
      const item = await source.file(change.key);
      if (item?.type === 'file') {
        await engine.push(change.key, item.body.toReference(), { knownNew: true });
        return;
      }
      if (item?.type === 'skipped') {
        io.stderr(`${name}: skipped ${change.key}: ${item.reason}\n`);
        return;
      }
      // Gone again before it was looked at: the delete event follows.
      return;
    }
    if (options.delete) await engine.push(change.key, null, { delete: true });
  };
  const onChange = (change: FolderChange): void => {
    const previous = chains.get(change.key) ?? Promise.resolve();
    const next = previous
      .then(() => handle(change))
      .catch((error: unknown) => {
        io.stderr(`${name}: ${change.key}: ${(error as Error)?.message ?? String(error)}\n`);
      });
    chains.set(change.key, next);
    inFlight.add(next);
    void next.finally(() => {
      inFlight.delete(next);
      if (chains.get(change.key) === next) chains.delete(change.key);
    });
  };

  let failure: { error: unknown } | undefined;
  let watcher: FolderWatcher | undefined;
  try {
    // Watch first, so a change made during the first pass is not missed.
    watcher = await source.watch(onChange, {
      onSkip: (entry) => io.stderr(`${name}: skipped ${entry.key}: ${entry.reason}\n`),
      onError: (error) => io.stderr(`${name}: watcher: ${error.message}\n`),
    });
    const first = await reconcile(opened, options, io, stopFromInside.signal);
    state.paused ??= first.paused;
    if (!state.paused) {
      io.stderr(`${name}: watching ${options.dir} (debounce ${options.debounceMs}ms)\n`);
      runOptions.onReady?.();
      await stopped;
    }
  } catch (error) {
    if (!stopFromInside.signal.aborted) failure = { error };
  }
  io.stderr(`${name}: stopping: sending what is queued\n`);
  // The watcher stops; the source stays open for files that change while they are sent.
  await watcher?.close().catch(() => {});
  await Promise.allSettled(inFlight);
  const report = cliReport(
    await engine.shutdown({ timeoutMs: options.shutdownTimeoutMs }),
    source.cache.stats,
  );
  offPaused();
  stopProgress();
  await opened.close();
  if (failure) throw failure.error;
  const pause = state.paused ?? report.paused;
  if (!pause || options.json) printReport('run', report, options.json, io);
  if (pause) io.stderr(`${name}: ${pause.message}\n`);
  return pause ? 1 : exitCode(report);
}

registerCommand('run', 'mirror a folder, then keep it mirrored as it changes', (args, io) =>
  run(args, io),
);
