import type { CliIo } from '../main.ts';
import type { OpenedEngine } from '../open-engine.ts';
import type { SyncOptions } from '../sync-options.ts';
import { listenKeys, type KeyAction } from './keyboard.ts';
import { PanelCollector } from './panel-model.ts';
import { plainProgress } from './plain-progress.ts';
import type { StopControl } from './stop-control.ts';
import type { Terminal } from './terminal.ts';
import { unrefEvery, type Every } from './ticker.ts';
import { TtyPanel } from './tty-panel.ts';

export interface LiveOutputOptions {
  readonly opened: Pick<OpenedEngine, 'engine' | 'stats' | 'monitor'>;
  readonly options: Pick<SyncOptions, 'command' | 'concurrency' | 'json' | 'quiet' | 'verbose'>;
  readonly io: CliIo;
  /** The terminal for the live panel; null for plain lines. */
  readonly terminal: Terminal | null;
  readonly stop: StopControl;
  /** Wraps where notes and progress lines go (sync holds them until the remote answers). */
  readonly wrap?: (io: CliIo) => CliIo;
  readonly every?: Every;
}

/**
 * What a running `sync` or `run` shows: on a terminal the live panel (and the
 * p/q keys when stdin is one too), otherwise plain lines. `io` is where the
 * command's own notes go, so that they land above the panel.
 */
export class LiveOutput {
  readonly io: CliIo;
  readonly collector: PanelCollector;
  readonly #panel: TtyPanel | null;
  readonly #stopPlain: () => void;
  readonly #restoreKeys: () => void;
  readonly #opened: LiveOutputOptions['opened'];
  #finished = false;

  constructor(o: LiveOutputOptions) {
    const { opened, options, terminal, stop } = o;
    const every = o.every ?? unrefEvery;
    this.#opened = opened;
    const keys = terminal?.input ?? null;
    this.collector = new PanelCollector(opened, {
      command: options.command,
      concurrency: options.concurrency,
      keys: keys !== null && !options.quiet,
    });
    this.#panel =
      terminal && !options.quiet
        ? new TtyPanel({
            stream: terminal.stream,
            collector: this.collector,
            color: terminal.color,
            every,
          })
        : null;
    const panel = this.#panel;
    const routed: CliIo = panel
      ? { stdout: o.io.stdout, stderr: (text) => panel.note(text) }
      : o.io;
    const notes = o.wrap ? o.wrap(routed) : routed;
    // --quiet: the report's errors and verdict are all; notes and progress go nowhere.
    this.io = options.quiet ? { stdout: notes.stdout, stderr: () => {} } : notes;
    this.#stopPlain = plainProgress({
      name: `upsync ${options.command}`,
      engine: opened.engine,
      collector: this.collector,
      io: this.io,
      every,
      lines: !panel && !options.json,
      errors: !panel,
      verbose: options.verbose,
    });
    this.#restoreKeys =
      keys && panel ? listenKeys(keys, (action) => this.#onKey(action, stop)) : () => {};
    if (keys && panel) process.once('exit', this.#restoreKeys);
    panel?.start();
  }

  /** Stops the timers and the keys; on a terminal, leaves the final frame. Safe to call twice. */
  async finish(): Promise<void> {
    if (this.#finished) return;
    this.#finished = true;
    this.#stopPlain();
    this.#restoreKeys();
    process.off('exit', this.#restoreKeys);
    try {
      await this.#panel?.finish();
    } finally {
      this.collector.close();
    }
  }

  #onKey(action: KeyAction, stop: StopControl): void {
    if (action !== 'pause') {
      stop.request();
      return;
    }
    if (stop.requested) return;
    const { engine } = this.#opened;
    // A pause for a refused token is not the user's to lift: pause() keeps that reason.
    if (this.collector.paused) engine.resume();
    else engine.pause();
  }
}
