import { exitCode, type PauseInfo } from '@upsync/core';
import { registerCommand, type CliIo } from './main.ts';
import { openEngine } from './open-engine.ts';
import { HeldNotes, remoteAnswered, unreachable } from './held-notes.ts';
import { cliReport, printReport, type CliReport, type LeftInOutbox } from './print-report.ts';
import { reconcile } from './reconcile.ts';
import { parseSyncOptions, SYNC_HELP } from './sync-options.ts';
import { shortDuration } from './panel/format.ts';
import { LiveOutput } from './panel/live-output.ts';
import { StopControl } from './panel/stop-control.ts';
import { letInFlightFinish, sendAll, SendsInFlight, terminalPause } from './panel/stopping.ts';
import { colorWanted, processTerminal, type Terminal } from './panel/terminal.ts';

/**
 * `upsync sync [DIR]`: one full pass; returns the exit code. On a terminal a
 * live panel shows it (p pauses, q stops); otherwise plain lines. A stop
 * (q, Ctrl-C, SIGINT, SIGTERM) ends the scan, starts no new send, gives the
 * requests in flight up to the shutdown timeout and reports; a second stop
 * ends at once. What was not sent stays in the outbox.
 */
export interface SyncCommandOptions {
  env?: NodeJS.ProcessEnv;
  /** Where the live panel goes; default the process's terminal, if stderr is one. */
  terminal?: Terminal | null;
  /** A stop request from the caller, taken like q or SIGINT. */
  stopSignal?: AbortSignal;
  /** Handed the final report (a caller such as the demo explains its numbers). */
  onReport?: (report: CliReport) => void;
}

export async function sync(
  args: string[],
  io: CliIo,
  commandOptions: SyncCommandOptions = {},
): Promise<number> {
  const env = commandOptions.env ?? process.env;
  const terminal =
    commandOptions.terminal === undefined ? processTerminal(env) : commandOptions.terminal;
  const options = parseSyncOptions('sync', args, env);
  if (!options) {
    io.stdout(SYNC_HELP);
    return 0;
  }
  const opened = await openEngine(options, io);
  const { engine } = opened;
  const stop = new StopControl();
  const offSignals = stop.listenSignals();
  if (commandOptions.stopSignal) stop.follow(commandOptions.stopSignal);
  const inFlight = new SendsInFlight(engine);
  let notes: HeldNotes | undefined;
  const live = new LiveOutput({
    opened,
    options,
    io,
    terminal,
    stop,
    wrap: (routed) => {
      notes = new HeldNotes(routed, () => remoteAnswered(opened.stats.snapshot().requests));
      return notes.io;
    },
  });
  const color = terminal?.color ?? colorWanted(env, false);
  try {
    let paused: PauseInfo | null = null;
    let failure: { error: unknown } | undefined;
    try {
      live.collector.setPhase('sending');
      live.collector.setScanning(true);
      paused = terminalPause((await reconcile(opened, options, live.io, stop.signal)).paused);
      live.collector.setScanning(false);
      if (!paused) await sendAll(engine, stop);
    } catch (error) {
      // A stop aborts the scan or the listing: that is no failure.
      if (!stop.requested) failure = { error };
    }
    live.collector.setScanning(false);
    if (stop.requested && !failure) {
      live.collector.stopping(
        `no new sends; waiting up to ${shortDuration(options.shutdownTimeoutMs)} for the requests in flight`,
      );
      await letInFlightFinish(engine, inFlight, stop, options.shutdownTimeoutMs);
    }
    // Also after a failure: the lock is released, and what did not arrive stays pending.
    const engineReport = await engine.shutdown({ timeoutMs: options.shutdownTimeoutMs });
    const left: LeftInOutbox | null = await opened.store.counts(opened.scope).catch(() => null);
    const report: CliReport = {
      ...cliReport(engineReport, opened.source.cache.stats, left),
      ...(stop.requested ? { stopped: true } : {}),
    };
    commandOptions.onReport?.(report);
    await live.finish();
    if (failure) {
      notes?.release();
      throw failure.error;
    }
    paused ??= terminalPause(report.paused);
    if (!paused && unreachable(report)) {
      notes?.drop();
      if (options.json) printReport('sync', report, true, io);
      io.stderr(
        `upsync sync: the remote ${options.remote} could not be reached; ${report.timedOut} items stay pending for the next run (${report.errors[0]?.message ?? 'no answer'})\n`,
      );
      return 1;
    }
    notes?.release();
    // A refused token ends with one clear line; the JSON report is still there when asked.
    if (!paused || options.json) {
      printReport('sync', report, { json: options.json, quiet: options.quiet, color }, io);
    }
    if (paused) io.stderr(`upsync sync: ${paused.message}\n`);
    return paused || report.stopped === true ? 1 : exitCode(report);
  } finally {
    offSignals();
    inFlight.close();
    await live.finish();
    await opened.close();
  }
}

registerCommand('sync', 'mirror a folder to the remote once', (args, io) => sync(args, io));
