import type { PauseInfo } from './engine-types.ts';

/**
 * Whether sending may go on. Sends wait at the gate while it is paused (by the
 * user, or by a 401/403/404-on-project answer) and go on at resume; every
 * item stays pending meanwhile.
 */
export class PauseGate {
  #paused: PauseInfo | null = null;
  #opened: (() => void) | null = null;
  #whenOpen: Promise<void> = Promise.resolve();
  readonly #onChange: (paused: PauseInfo | null, was: PauseInfo | null) => void;

  constructor(options: { onChange: (paused: PauseInfo | null, was: PauseInfo | null) => void }) {
    this.#onChange = options.onChange;
  }

  get paused(): PauseInfo | null {
    return this.#paused;
  }

  /** Pauses; a pause already in place keeps its first reason (the one the user must fix). */
  pause(info: PauseInfo): void {
    if (this.#paused) return;
    this.#paused = info;
    this.#whenOpen = new Promise((resolve) => {
      this.#opened = resolve;
    });
    this.#onChange(info, null);
  }

  resume(): void {
    const was = this.#paused;
    if (!was) return;
    this.#paused = null;
    this.#opened?.();
    this.#opened = null;
    this.#onChange(null, was);
  }

  /** Resolves at once when open, else at resume; rejects with `signal.reason` on abort. */
  wait(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(signal.reason as Error);
    if (!this.#paused) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onAbort = (): void => reject(signal.reason as Error);
      signal.addEventListener('abort', onAbort, { once: true });
      void this.#whenOpen.then(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }
}
