import { exitCode, type PauseInfo } from '@upsync/core';
import type { FolderChange, FolderWatcher } from '../source/folder-watcher.ts';
import { registerCommand, type CliIo } from './main.ts';
import { openEngine } from './open-engine.ts';
import { cliReport, printReport, type CliReport, type LeftInOutbox } from './print-report.ts';
import { reconcile } from './reconcile.ts';
import { parseSyncOptions, RUN_HELP } from './sync-options.ts';
import { shortDuration } from './panel/format.ts';
import { LiveOutput } from './panel/live-output.ts';
import { StopControl } from './panel/stop-control.ts';
import { terminalPause, whenAborted } from './panel/stopping.ts';
import { colorWanted, processTerminal, type Terminal } from './panel/terminal.ts';

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  /** Stops the command when aborted; default: the first SIGINT or SIGTERM (or q on a terminal). */
  stopSignal?: AbortSignal;
  /** Called once the first pass is done and the folder is watched (tests wait for it). */
  onReady?: () => void;
  /** Where the live panel goes; default the process's terminal, if stderr is one. */
  terminal?: Terminal | null;
  /** Handed the final report (a caller such as the demo explains its numbers). */
  onReport?: (report: CliReport) => void;
}

/**
 * `upsync run [DIR]`: a first pass like `sync`, then every change the watcher
 * reports goes to the engine as known new (no existence check) through the
 * per-key debounce. Stopped, it sends what is queued, waits up to
 * --shutdown-timeout (a second stop request ends the wait), and exits 0 only
 * if everything arrived.
 */
export async function run(args: string[], io: CliIo, runOptions: RunOptions = {}): Promise<number> {
  const env = runOptions.env ?? process.env;
  const options = parseSyncOptions('run', args, env);
  if (!options) {
    io.stdout(RUN_HELP);
    return 0;
  }
  const name = 'upsync run';
  const opened = await openEngine(options, io);
  const { engine, source } = opened;
  const terminal = runOptions.terminal === undefined ? processTerminal(env) : runOptions.terminal;
  const stop = new StopControl();
  const offSignals = runOptions.stopSignal
    ? (stop.follow(runOptions.stopSignal), () => {})
    : stop.listenSignals();
  // A second stop request cuts the shutdown's wait short: a paused engine stops waiting.
  stop.nowSignal.addEventListener('abort', () => engine.pause(), { once: true });
  const live = new LiveOutput({ opened, options, io, terminal, stop });
  const out = live.io;
  // The remote refused the token or has no such project: the command ends from inside.
  const state: { paused: PauseInfo | null } = { paused: null };
  const offPaused = engine.on('paused', (info) => {
    if (terminalPause(info)) {
      state.paused = info;
      stop.request();
    }
  });
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
        out.stderr(`${name}: skipped ${change.key}: ${item.reason}\n`);
        return;
      }
      // Gone again before it was looked at: the delete event follows.
      return;
    }
    if (options.delete) await engine.push(change.key, null, { delete: true });
  };
  const onChange = (change: FolderChange): void => {
    live.collector.changeReceived();
    const previous = chains.get(change.key) ?? Promise.resolve();
    const next = previous
      .then(() => handle(change))
      .catch((error: unknown) => {
        out.stderr(`${name}: ${change.key}: ${(error as Error)?.message ?? String(error)}\n`);
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
    try {
      live.collector.setPhase('sending');
      // Watch first, so a change made during the first pass is not missed.
      watcher = await source.watch(onChange, {
        onSkip: (entry) => out.stderr(`${name}: skipped ${entry.key}: ${entry.reason}\n`),
        onError: (error) => out.stderr(`${name}: watcher: ${error.message}\n`),
      });
      live.collector.setScanning(true);
      const first = await reconcile(opened, options, out, stop.signal);
      live.collector.setScanning(false);
      state.paused ??= terminalPause(first.paused);
      if (!state.paused && !stop.requested) {
        out.stderr(`${name}: watching ${options.dir} (debounce ${options.debounceMs}ms)\n`);
        live.collector.startWatching();
        runOptions.onReady?.();
        await whenAborted(stop.signal);
      }
    } catch (error) {
      if (!stop.requested) failure = { error };
    }
    live.collector.setScanning(false);
    live.collector.stopping(
      `sending what is queued, up to ${shortDuration(options.shutdownTimeoutMs)}`,
    );
    out.stderr(`${name}: stopping: sending what is queued\n`);
    // The watcher stops; the source stays open for files that change while they are sent.
    await watcher?.close().catch(() => {});
    await Promise.allSettled(inFlight);
    const engineReport = await engine.shutdown({ timeoutMs: options.shutdownTimeoutMs });
    const left: LeftInOutbox | null = await opened.store.counts(opened.scope).catch(() => null);
    const report = cliReport(engineReport, source.cache.stats, left);
    runOptions.onReport?.(report);
    await live.finish();
    offPaused();
    if (failure) throw failure.error;
    const pause = state.paused ?? terminalPause(report.paused);
    if (!pause || options.json) {
      const color = terminal?.color ?? colorWanted(env, false);
      printReport('run', report, { json: options.json, quiet: options.quiet, color }, io);
    }
    if (pause) io.stderr(`${name}: ${pause.message}\n`);
    return pause ? 1 : exitCode(report);
  } finally {
    offSignals();
    offPaused();
    await live.finish();
    await opened.close();
  }
}

registerCommand('run', 'mirror a folder, then keep it mirrored as it changes', (args, io) =>
  run(args, io),
);
