/**
 * Holds back a repeat of an Idempotency-Key while the first request with it is
 * still being processed, so the repeat gets the first one's kept answer
 * instead of racing it. In memory: one server process owns its storage.
 */
export class IdempotencyGate {
  readonly #running = new Map<string, Promise<void>>();

  /** Waits until no request holds `id`, then holds it; call the returned function to let go. */
  async enter(id: string, signal?: AbortSignal): Promise<() => void> {
    for (;;) {
      signal?.throwIfAborted();
      const running = this.#running.get(id);
      if (!running) break;
      await (signal ? raceAbort(running, signal) : running);
    }
    let release!: () => void;
    const done = new Promise<void>((resolve) => (release = resolve));
    this.#running.set(id, done);
    return () => {
      if (this.#running.get(id) === done) this.#running.delete(id);
      release();
    };
  }

  get size(): number {
    return this.#running.size;
  }
}

function raceAbort(promise: Promise<void>, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    void promise.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
  });
}
