import type { Engine } from '@upsync/core';
import type { CliIo } from '../main.ts';
import { shortDuration, shortRate } from './format.ts';
import type { PanelCollector, PanelModel } from './panel-model.ts';
import type { Every } from './ticker.ts';

/** How often a long pass says how far it got without a terminal. */
export const PLAIN_EVERY_MS = 2_000;

/** One progress line, e.g. `upsync sync: 120 done, 180 pending, 16 in flight, 0 retrying (...)`. */
export function plainLine(name: string, model: PanelModel): string {
  const extra: string[] = [];
  if (model.watching) {
    const w = model.watching;
    extra.push(`watching: ${w.changes} changes, ${w.coalesced} coalesced, ${w.sent} sent`);
  } else {
    extra.push(`${model.total}${model.scanning ? '+' : ''} taken up`);
  }
  extra.push(`${shortRate(model.itemsPerSec)} items/s`);
  if (model.etaMs !== null && model.etaMs > 0) extra.push(`ETA ${shortDuration(model.etaMs)}`);
  if (model.paused) extra.push('PAUSED');
  return (
    `${name}: ${model.done} done, ${model.pending ?? '?'} pending, ${model.workers.inFlight} in flight, ` +
    `${model.retrying} retrying (${extra.join(', ')})\n`
  );
}

export interface PlainProgressOptions {
  readonly name: string;
  readonly engine: Pick<Engine, 'on'>;
  readonly collector: PanelCollector;
  readonly io: CliIo;
  readonly every: Every;
  /** A progress line every 2 s while something changes (off for --quiet and --json). */
  readonly lines: boolean;
  /** A line per failed item (the panel shows its own). */
  readonly errors: boolean;
  /** --verbose: a line per outcome and per retry. */
  readonly verbose: boolean;
}

/**
 * Output without a live panel: a progress line every 2 s when something
 * changed, the failures as they come, and with --verbose every outcome and
 * retry. Returns the function that stops it.
 */
export function plainProgress(options: PlainProgressOptions): () => void {
  const { name, engine, collector, io } = options;
  const offs: Array<() => void> = [];
  if (options.errors || options.verbose) {
    offs.push(
      engine.on('outcome', (event) => {
        if (event.outcome === 'errored') {
          const where = event.deadLettered ? 'dead-lettered' : 'failed';
          io.stderr(`${name}: ${where}: ${event.key}: ${event.error ?? 'error'}\n`);
        } else if (options.verbose) {
          const what =
            event.outcome === 'skipped'
              ? 'already there'
              : event.outcome === 'timedOut'
                ? `not sent: ${event.error ?? 'timed out'}`
                : event.outcome;
          io.stderr(`${name}: ${event.key}: ${what}\n`);
        }
      }),
    );
  }
  if (options.verbose) {
    offs.push(
      engine.on('retrying', (event) =>
        io.stderr(
          `${name}: ${event.key}: retry ${event.attempt} in ${shortDuration(event.delayMs)}: ${event.error}\n`,
        ),
      ),
    );
  }
  if (options.lines) {
    let shown = '';
    const tick = (): void => {
      void collector.refresh().then(() => {
        const model = collector.model();
        // Only when something moved: a quiet `run` does not fill a CI log with copies.
        const state = `${model.done}/${model.total}/${model.paused}/${model.watching?.changes ?? ''}`;
        if (state === shown) return;
        shown = state;
        io.stderr(plainLine(name, model));
      });
    };
    offs.push(options.every(PLAIN_EVERY_MS, tick));
  }
  return () => {
    for (const off of offs) off();
  };
}
