import { ClosedError } from '../errors/upsync-error.ts';
import { assertInteger } from '../validate.ts';

export interface SemaphoreOptions {
  /** How many holders at once; an integer >= 1. Change it later with setLimit(). */
  limit: number;
}

/** Gives the permit back. Calling it again does nothing. */
export type SemaphoreRelease = () => void;

interface Waiter {
  readonly resolve: (release: SemaphoreRelease) => void;
  readonly reject: (reason: unknown) => void;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
}

/**
 * A counting semaphore with a strict FIFO queue. There is no acquire timeout on
 * purpose: a deadline is the caller's signal (AbortSignal.timeout), so one
 * mechanism covers both giving up and shutting down.
 */
export class Semaphore {
  #limit: number;
  #inUse = 0;
  // Insertion-ordered, and an aborted waiter leaves from the middle in O(1).
  readonly #queue = new Set<Waiter>();
  #closed = false;

  constructor(options: SemaphoreOptions) {
    assertInteger('limit', options.limit, 1);
    this.#limit = options.limit;
  }

  get limit(): number {
    return this.#limit;
  }

  /** Permits held now. May exceed `limit` for a while after it shrank. */
  get inUse(): number {
    return this.#inUse;
  }

  get waiting(): number {
    return this.#queue.size;
  }

  /**
   * Waits for a permit behind every earlier caller. Rejects with `signal.reason`
   * on abort and with a ClosedError on close().
   */
  acquire(signal?: AbortSignal): Promise<SemaphoreRelease> {
    if (this.#closed) return Promise.reject(new ClosedError('the semaphore is closed'));
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    if (this.#queue.size === 0 && this.#inUse < this.#limit) {
      return Promise.resolve(this.#grant());
    }
    return new Promise<SemaphoreRelease>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          this.#queue.delete(waiter);
          reject(signal?.reason as Error);
        },
      };
      this.#queue.add(waiter);
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
    });
  }

  /** Runs `fn` holding a permit, and releases it however `fn` ends. */
  async run<T>(
    fn: (signal: AbortSignal | undefined) => T | Promise<T>,
    signal?: AbortSignal,
  ): Promise<T> {
    const release = await this.acquire(signal);
    try {
      return await fn(signal);
    } finally {
      release();
    }
  }

  /**
   * Resizes at run time. Growing admits waiters at once; shrinking takes no
   * permit back, so holders finish and nobody is admitted until `inUse` drops
   * below the new limit.
   */
  setLimit(limit: number): void {
    assertInteger('limit', limit, 1);
    this.#limit = limit;
    this.#drain();
  }

  /**
   * Rejects every waiter with a ClosedError; later acquires fail the same way.
   * Holders keep their permits, and releasing them stays safe.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const waiters = [...this.#queue];
    this.#queue.clear();
    for (const waiter of waiters) {
      waiter.signal?.removeEventListener('abort', waiter.onAbort);
      waiter.reject(new ClosedError('the semaphore was closed while waiting'));
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }

  #grant(): SemaphoreRelease {
    this.#inUse++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#inUse--;
      this.#drain();
    };
  }

  #drain(): void {
    for (const waiter of this.#queue) {
      if (this.#inUse >= this.#limit) return;
      this.#queue.delete(waiter);
      waiter.signal?.removeEventListener('abort', waiter.onAbort);
      waiter.resolve(this.#grant());
    }
  }
}
