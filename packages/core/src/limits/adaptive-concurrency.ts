import { systemClock, type Clock } from '../time/clock.ts';
import { Emitter, type Listener } from '../events/emitter.ts';
import { assertInteger, assertNonNegative } from '../validate.ts';

export interface AdaptiveConcurrencyOptions {
  /** The floor; an integer >= 1. Default 1. */
  min?: number;
  /** The ceiling: the concurrency the user configured. */
  max: number;
  /**
   * Where to start. Default `max`: the user's setting stands until the remote
   * pushes back, so a healthy host is never paced below what was asked for.
   */
  initial?: number;
  /**
   * Successes needed to grow by one. Default: the current limit, as TCP's
   * congestion avoidance grows by one per round of the window, so growth slows
   * as the limit rises and one success per request in flight is needed.
   */
  successesPerIncrease?: number;
  /** The limit is multiplied by this on overload; in (0, 1). Default 0.5. */
  decreaseFactor?: number;
  /**
   * Overloads within this long after a decrease count as that same decrease:
   * the requests already in flight when the host pushed back all fail together,
   * and cutting once per failure would collapse the limit to `min`. Default 1000.
   */
  cooldownMs?: number;
  /** Default: the system clock. */
  clock?: Clock;
}

export interface AdaptiveConcurrencyChange {
  readonly limit: number;
  readonly previous: number;
  readonly reason: 'increase' | 'decrease';
}

export interface AdaptiveConcurrencyEvents {
  change: AdaptiveConcurrencyChange;
}

/**
 * Additive-increase, multiplicative-decrease concurrency: grows by one per
 * window of successes, multiplies down on a burst of 429/503/timeouts, always
 * within [min, max]. It only computes the number; the engine applies it (for
 * example with `semaphore.setLimit`) from the 'change' event.
 */
export class AdaptiveConcurrency {
  readonly #min: number;
  readonly #max: number;
  readonly #successesPerIncrease: number | undefined;
  readonly #decreaseFactor: number;
  readonly #cooldownMs: number;
  readonly #clock: Clock;
  readonly #events = new Emitter<AdaptiveConcurrencyEvents>();
  #limit: number;
  #successes = 0;
  #lastDecreaseMs: number | undefined;

  constructor(options: AdaptiveConcurrencyOptions) {
    const min = options.min ?? 1;
    assertInteger('min', min, 1);
    assertInteger('max', options.max, min);
    const initial = options.initial ?? options.max;
    assertInteger('initial', initial, min);
    if (initial > options.max) {
      throw new TypeError(`initial must be <= max (${options.max}), got ${initial}`);
    }
    if (options.successesPerIncrease !== undefined) {
      assertInteger('successesPerIncrease', options.successesPerIncrease, 1);
    }
    const decreaseFactor = options.decreaseFactor ?? 0.5;
    if (typeof decreaseFactor !== 'number' || !(decreaseFactor > 0 && decreaseFactor < 1)) {
      throw new TypeError(
        `decreaseFactor must be a number above 0 and below 1, got ${String(decreaseFactor)}`,
      );
    }
    const cooldownMs = options.cooldownMs ?? 1000;
    assertNonNegative('cooldownMs', cooldownMs);
    this.#min = min;
    this.#max = options.max;
    this.#limit = initial;
    this.#successesPerIncrease = options.successesPerIncrease;
    this.#decreaseFactor = decreaseFactor;
    this.#cooldownMs = cooldownMs;
    this.#clock = options.clock ?? systemClock;
  }

  get limit(): number {
    return this.#limit;
  }

  get min(): number {
    return this.#min;
  }

  get max(): number {
    return this.#max;
  }

  on<K extends keyof AdaptiveConcurrencyEvents>(
    event: K,
    listener: Listener<AdaptiveConcurrencyEvents[K]>,
  ): () => void {
    return this.#events.on(event, listener);
  }

  /** A request finished without a sign of overload. */
  recordSuccess(): void {
    if (this.#limit >= this.#max) {
      // Banking successes at the ceiling would let the limit jump the moment a
      // decrease lowers it; growth must be earned at the new level.
      this.#successes = 0;
      return;
    }
    this.#successes++;
    if (this.#successes < (this.#successesPerIncrease ?? this.#limit)) return;
    this.#successes = 0;
    this.#set(this.#limit + 1, 'increase');
  }

  /** The remote signalled overload: a 429, a 503 or a timeout. */
  recordOverload(): void {
    const nowMs = this.#clock.now();
    const sinceMs = nowMs - (this.#lastDecreaseMs ?? Number.NEGATIVE_INFINITY);
    // A wall clock stepping back must not hold the limit up until it catches up.
    if (sinceMs >= 0 && sinceMs < this.#cooldownMs) return;
    // The cooldown starts even at the floor, so a burst there still counts once.
    this.#lastDecreaseMs = nowMs;
    this.#successes = 0;
    this.#set(Math.max(this.#min, Math.floor(this.#limit * this.#decreaseFactor)), 'decrease');
  }

  #set(limit: number, reason: AdaptiveConcurrencyChange['reason']): void {
    if (limit === this.#limit) return;
    const previous = this.#limit;
    this.#limit = limit;
    this.#events.emit('change', { limit, previous, reason });
  }
}
