import { exitCode, type PauseInfo } from '@upsync/core';
import { registerCommand, type CliIo } from './main.ts';
import { openEngine, type OpenedEngine } from './open-engine.ts';
import { HeldNotes, remoteAnswered, unreachable } from './held-notes.ts';
import { cliReport, printReport } from './print-report.ts';
import { reconcile } from './reconcile.ts';
import { parseSyncOptions, SYNC_HELP } from './sync-options.ts';

/** How often a long pass says how far it got (plain progress; the live panel is its own command). */
const PROGRESS_EVERY_MS = 2_000;

/** Plain progress lines on stderr while a pass runs; returns the stop function. */
export function progressLines(name: string, opened: OpenedEngine, io: CliIo): () => void {
  let done = 0;
  let shown = -1;
  const off = opened.engine.on('outcome', (event) => {
    done++;
    if (event.outcome === 'errored') {
      io.stderr(
        `${name}: ${event.deadLettered ? 'dead-lettered' : 'failed'}: ${event.key}: ${event.error ?? 'error'}\n`,
      );
    }
  });
  const timer = setInterval(() => {
    if (done === shown) return;
    shown = done;
    void opened.engine.status().then(
      (status) =>
        io.stderr(
          `${name}: ${done} done, ${status.pending} pending, ${status.inFlight} in flight, ${status.retrying} retrying\n`,
        ),
      () => {},
    );
  }, PROGRESS_EVERY_MS);
  timer.unref();
  return () => {
    clearInterval(timer);
    off();
  };
}

/** `upsync sync [DIR]`: one full pass; returns the exit code. */
export async function sync(
  args: string[],
  io: CliIo,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  const options = parseSyncOptions('sync', args, env);
  if (!options) {
    io.stdout(SYNC_HELP);
    return 0;
  }
  const opened = await openEngine(options, io);
  const { engine } = opened;
  const notes = new HeldNotes(io, () => remoteAnswered(opened.stats.snapshot().requests));
  const stopProgress = progressLines('upsync sync', opened, notes.io);
  try {
    let paused: PauseInfo | null = null;
    let failure: { error: unknown } | undefined;
    try {
      ({ paused } = await reconcile(opened, options, notes.io));
      if (!paused) await engine.flush();
    } catch (error) {
      failure = { error };
    }
    // Also after a failure: the lock is released, and what did not arrive stays pending.
    const report = cliReport(
      await engine.shutdown({ timeoutMs: options.shutdownTimeoutMs }),
      opened.source.cache.stats,
    );
    stopProgress();
    if (failure) {
      notes.release();
      throw failure.error;
    }
    paused ??= report.paused;
    if (!paused && unreachable(report)) {
      notes.drop();
      if (options.json) printReport('sync', report, true, io);
      io.stderr(
        `upsync sync: the remote ${options.remote} could not be reached; ${report.timedOut} items stay pending for the next run (${report.errors[0]?.message ?? 'no answer'})\n`,
      );
      return 1;
    }
    notes.release();
    // A refused token ends with one clear line; the JSON report is still there when asked.
    if (!paused || options.json) printReport('sync', report, options.json, io);
    if (paused) io.stderr(`upsync sync: ${paused.message}\n`);
    return paused ? 1 : exitCode(report);
  } finally {
    stopProgress();
    await opened.close();
  }
}

registerCommand('sync', 'mirror a folder to the remote once', (args, io) => sync(args, io));
