import { systemClock, type Clock, type TimerHandle } from '../time/clock.ts';
import { ClosedError } from '../errors/upsync-error.ts';
import { assertInteger, assertPositive } from '../validate.ts';

export interface TokenBucketOptions {
  /** Tokens added per second, at a steady rate (not in whole-second steps). */
  ratePerSec: number;
  /** The most tokens the bucket holds, i.e. the largest burst it admits at once. An integer >= 1. */
  burst: number;
  /** Default: the system clock. */
  clock?: Clock;
}

interface Waiter {
  readonly resolve: () => void;
  readonly reject: (reason: unknown) => void;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
}

// Refill is computed with floats; without a little slack, a timer armed for the
// exact moment a token is due can wake to 0.9999999 tokens and re-arm for 0 ms.
const EPSILON = 1e-9;

/**
 * A token bucket: admits at most `burst` at once and `ratePerSec` on average.
 * It starts full. Waiters are served in strict FIFO order: neither `tryTake()`
 * nor a later `take()` gets a token while anyone is queued, so a steady stream
 * of small callers cannot starve an earlier one.
 */
export class TokenBucket {
  readonly #clock: Clock;
  #ratePerSec: number;
  #burst: number;
  #tokens: number;
  #refilledAtMs: number;
  // A Set keeps insertion order and removes an aborted waiter from the middle in O(1).
  readonly #queue = new Set<Waiter>();
  #timer: TimerHandle | undefined;
  #closed = false;

  constructor(options: TokenBucketOptions) {
    assertPositive('ratePerSec', options.ratePerSec);
    assertInteger('burst', options.burst, 1);
    this.#clock = options.clock ?? systemClock;
    this.#ratePerSec = options.ratePerSec;
    this.#burst = options.burst;
    this.#tokens = options.burst;
    this.#refilledAtMs = this.#clock.now();
  }

  get ratePerSec(): number {
    return this.#ratePerSec;
  }

  get burst(): number {
    return this.#burst;
  }

  /** Tokens available now (fractional while refilling). */
  get available(): number {
    this.#refill();
    return Math.max(0, this.#tokens);
  }

  /** How many `take()` calls are queued. */
  get waiting(): number {
    return this.#queue.size;
  }

  /**
   * Takes `n` tokens if they are there and nobody is queued; never waits.
   * Throws a RangeError for `n` above `burst` (it could never succeed), and a
   * ClosedError after close() (a false would invite the caller to spin).
   */
  tryTake(n = 1): boolean {
    assertPositive('n', n);
    if (n > this.#burst)
      throw new RangeError(`tryTake(${n}) can never succeed: burst is ${this.#burst}`);
    if (this.#closed) throw new ClosedError('the token bucket is closed');
    if (this.#queue.size > 0) return false;
    this.#refill();
    if (this.#tokens + EPSILON < n) return false;
    this.#tokens -= n;
    return true;
  }

  /**
   * Waits for one token, behind every earlier waiter. Rejects with
   * `signal.reason` on abort (the waiters behind move up) and with a
   * ClosedError on close().
   */
  take(signal?: AbortSignal): Promise<void> {
    if (this.#closed) return Promise.reject(new ClosedError('the token bucket is closed'));
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    if (this.#queue.size === 0 && this.tryTake(1)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          const wasHead = this.#head() === waiter;
          this.#queue.delete(waiter);
          reject(signal?.reason as Error);
          if (wasHead) this.#serve();
        },
      };
      this.#queue.add(waiter);
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
      if (this.#queue.size === 1) this.#serve();
    });
  }

  /**
   * Changes the rate (and optionally the burst) from now on. Time already
   * elapsed is credited at the old rate first, so a change never grants or
   * loses tokens retroactively. A smaller burst drops the tokens above it; a
   * larger one adds no tokens at once.
   */
  setRate(ratePerSec: number, burst: number = this.#burst): void {
    assertPositive('ratePerSec', ratePerSec);
    assertInteger('burst', burst, 1);
    this.#refill();
    this.#ratePerSec = ratePerSec;
    this.#burst = burst;
    this.#tokens = Math.min(this.#tokens, burst);
    // The head's due time depends on the rate: re-arm its timer.
    if (this.#queue.size > 0) this.#serve();
  }

  /** Rejects every waiter with a ClosedError; later calls fail the same way. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#disarm();
    const waiters = [...this.#queue];
    this.#queue.clear();
    for (const waiter of waiters) {
      waiter.signal?.removeEventListener('abort', waiter.onAbort);
      waiter.reject(new ClosedError('the token bucket was closed while waiting'));
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }

  #refill(): void {
    const nowMs = this.#clock.now();
    // A wall clock can step backwards; crediting nothing for that is safer than
    // a negative refill, and resetting the mark avoids a stall until it catches up.
    const elapsedMs = Math.max(0, nowMs - this.#refilledAtMs);
    this.#refilledAtMs = nowMs;
    this.#tokens = Math.min(this.#burst, this.#tokens + (elapsedMs * this.#ratePerSec) / 1000);
  }

  #head(): Waiter | undefined {
    for (const waiter of this.#queue) return waiter;
    return undefined;
  }

  /** Admits queued waiters while tokens last, then arms one timer for the head. */
  #serve(): void {
    this.#disarm();
    this.#refill();
    for (let head = this.#head(); head; head = this.#head()) {
      if (this.#tokens + EPSILON < 1) {
        const waitMs = Math.max(1, Math.ceil(((1 - this.#tokens) * 1000) / this.#ratePerSec));
        this.#timer = this.#clock.setTimeout(() => {
          this.#timer = undefined;
          this.#serve();
        }, waitMs);
        return;
      }
      this.#tokens -= 1;
      this.#queue.delete(head);
      head.signal?.removeEventListener('abort', head.onAbort);
      head.resolve();
    }
  }

  #disarm(): void {
    if (this.#timer === undefined) return;
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
