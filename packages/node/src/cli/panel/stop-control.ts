/**
 * The user's stop requests (q, Ctrl-C, SIGINT, SIGTERM): the first stops
 * gracefully (`signal`), the second cuts the wait short (`nowSignal`).
 */
export class StopControl {
  readonly #graceful = new AbortController();
  readonly #now = new AbortController();

  /** Aborted at the first request. */
  get signal(): AbortSignal {
    return this.#graceful.signal;
  }

  /** Aborted at the second request. */
  get nowSignal(): AbortSignal {
    return this.#now.signal;
  }

  get requested(): boolean {
    return this.#graceful.signal.aborted;
  }

  request(): void {
    if (!this.#graceful.signal.aborted) this.#graceful.abort();
    else this.#now.abort();
  }

  /** Takes SIGINT and SIGTERM as stop requests until the returned function is called. */
  listenSignals(target: Pick<NodeJS.Process, 'on' | 'off'> = process): () => void {
    const onSignal = (): void => this.request();
    target.on('SIGINT', onSignal);
    target.on('SIGTERM', onSignal);
    return () => {
      target.off('SIGINT', onSignal);
      target.off('SIGTERM', onSignal);
    };
  }

  /** Follows an outside signal (a test's, or run's own stop on a refused token). */
  follow(signal: AbortSignal): void {
    if (signal.aborted) this.request();
    else signal.addEventListener('abort', () => this.request(), { once: true });
  }
}
