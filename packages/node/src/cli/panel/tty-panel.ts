import { createLogUpdate } from 'log-update';
import type { PanelCollector } from './panel-model.ts';
import { renderPanel } from './render-panel.ts';
import type { PanelStream } from './terminal.ts';
import { unrefEvery, type Every } from './ticker.ts';

/** How often a frame is built: items/s moves over a rolling window, faster adds nothing. */
export const FRAME_EVERY_MS = 500;

const HIDE_CURSOR = '\u001B[?25l';
const SHOW_CURSOR = '\u001B[?25h';

export interface TtyPanelOptions {
  readonly stream: PanelStream;
  readonly collector: PanelCollector;
  readonly color: boolean;
  readonly every?: Every;
}

/**
 * Draws the panel in place on a terminal: one frame from the collector's
 * snapshots every 500 ms on an unref'd timer (never per event), and notes
 * (a skipped file, a warning) printed above it.
 */
export class TtyPanel {
  readonly #stream: PanelStream;
  readonly #collector: PanelCollector;
  readonly #color: boolean;
  readonly #every: Every;
  readonly #log: ReturnType<typeof createLogUpdate>;
  #stopTimer: (() => void) | null = null;
  #frame = '';
  #finished = false;

  constructor(options: TtyPanelOptions) {
    this.#stream = options.stream;
    this.#collector = options.collector;
    this.#color = options.color;
    this.#every = options.every ?? unrefEvery;
    // The cursor is ours to hide and show, on this stream (log-update's own goes to process.stderr).
    // A terminal that reports no size (a pty nobody sized, as under `script`) says 0x0: assume 80x24.
    const stream = this.#stream;
    const sized = {
      isTTY: true,
      get columns(): number {
        return stream.columns || 80;
      },
      get rows(): number {
        return stream.rows || 24;
      },
      write: (text: string) => stream.write(text),
    };
    this.#log = createLogUpdate(sized as unknown as NodeJS.WriteStream, { showCursor: true });
  }

  start(): void {
    this.#stream.write(HIDE_CURSOR);
    process.once('exit', this.#restore);
    this.#draw();
    this.#stopTimer = this.#every(FRAME_EVERY_MS, () => this.tick());
  }

  /** Reads the engine's status, then draws (a slow read skips frames, it never stacks them). */
  tick(): void {
    void this.#collector.refresh().then(() => {
      if (!this.#finished) this.#draw();
    });
  }

  /** A line kept above the panel. */
  note(text: string): void {
    if (this.#finished) {
      this.#stream.write(text);
      return;
    }
    this.#log.persist(text.replace(/\n$/, ''));
    if (this.#frame !== '') this.#log(this.#frame);
  }

  /** Draws the final frame, leaves it on screen and shows the cursor again. */
  async finish(): Promise<void> {
    if (this.#finished) return;
    this.#stopTimer?.();
    await this.#collector.refresh();
    this.#collector.setPhase('done');
    this.#draw();
    this.#finished = true;
    this.#log.done();
    this.#restore();
    process.off('exit', this.#restore);
  }

  /** Also on an exit that skipped `finish` (an uncaught error): never leave the cursor hidden. */
  readonly #restore = (): void => {
    this.#stream.write(SHOW_CURSOR);
  };

  #draw(): void {
    // One column spare: a line that fills the last column makes some terminals wrap.
    const width = Math.max(20, (this.#stream.columns || 80) - 1);
    this.#frame = renderPanel(this.#collector.model(), { width, color: this.#color });
    this.#log(this.#frame);
  }
}
