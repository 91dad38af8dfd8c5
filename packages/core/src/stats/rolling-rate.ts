import { systemClock, type Clock } from '../time/clock.ts';
import { assertNonNegative, assertPositive } from '../validate.ts';

export interface RollingRateOptions {
  /** How far back the rate looks; default 10 s. A whole multiple of `bucketMs`, at least two buckets. */
  windowMs?: number;
  /** The ring buffer's resolution; default 500 ms. */
  bucketMs?: number;
  /** Default: the system clock. */
  clock?: Clock;
}

// A window of millions of buckets is a misconfiguration (it would allocate that many
// slots up front), not a wish for precision.
const MAX_BUCKETS = 100_000;

/**
 * Events per second over a rolling window, kept in a ring buffer of fixed-size buckets,
 * so memory does not grow with the number of events.
 *
 * Granularity: buckets are aligned to the moment the RollingRate was built. The rate
 * counts exactly the events recorded since the start of the oldest bucket still in the
 * ring, and divides by the time from there to now. Once a full window has elapsed, that
 * span is between `windowMs - bucketMs` (just as a new bucket starts) and `windowMs`;
 * before that, it is the time since construction, so a young RollingRate is not diluted
 * by a window it has not lived through yet. The span is never taken as shorter than one
 * bucket, so a burst in the first milliseconds does not read as a huge rate.
 *
 * Buckets are cleared lazily when time is next looked at, never by a timer: nothing to
 * close, and an idle gap of any length costs at most one pass over the ring.
 */
export class RollingRate {
  readonly #clock: Clock;
  readonly #bucketMs: number;
  readonly #windowMs: number;
  readonly #counts: Float64Array;
  readonly #startMs: number;
  /** Index, counted from construction, of the newest bucket in the ring. */
  #head = 0;
  /** The latest time seen; a clock that steps back is treated as standing still. */
  #nowMs: number;
  #total = 0;

  constructor(options: RollingRateOptions = {}) {
    const windowMs = options.windowMs ?? 10_000;
    const bucketMs = options.bucketMs ?? 500;
    assertPositive('windowMs', windowMs);
    assertPositive('bucketMs', bucketMs);
    const buckets = windowMs / bucketMs;
    if (!Number.isInteger(buckets) || buckets < 2 || buckets > MAX_BUCKETS) {
      throw new TypeError(
        `windowMs must be a whole multiple of bucketMs, from 2 to ${MAX_BUCKETS} buckets, got windowMs ${windowMs} and bucketMs ${bucketMs}`,
      );
    }
    const clock = options.clock ?? systemClock;
    if (typeof (clock as Partial<Clock> | null)?.now !== 'function') {
      const value: unknown = clock;
      const shown =
        typeof value === 'object' && value !== null
          ? `an object with keys ${JSON.stringify(Object.keys(value))}`
          : typeof value === 'string'
            ? JSON.stringify(value)
            : String(value);
      throw new TypeError(`clock must be a Clock (with now()), got ${shown}`);
    }
    this.#clock = clock;
    this.#windowMs = windowMs;
    this.#bucketMs = bucketMs;
    this.#counts = new Float64Array(buckets);
    this.#startMs = clock.now();
    this.#nowMs = this.#startMs;
  }

  get windowMs(): number {
    return this.#windowMs;
  }

  get bucketMs(): number {
    return this.#bucketMs;
  }

  /** Everything recorded since construction. */
  get total(): number {
    return this.#total;
  }

  /** Records `count` events now (a fraction is fine, e.g. for bytes). */
  record(count = 1): void {
    assertNonNegative('count', count);
    this.#advance();
    const slot = this.#head % this.#counts.length;
    this.#counts[slot] = (this.#counts[slot] ?? 0) + count;
    this.#total += count;
  }

  /** Events per second over the window, as described on the class. */
  ratePerSec(): number {
    this.#advance();
    let sum = 0;
    // Summed on read rather than kept as a running sum: the ring is small, and a
    // running sum of fractional counts would drift as buckets are subtracted out.
    for (const count of this.#counts) sum += count;
    const oldest = Math.max(0, this.#head - this.#counts.length + 1);
    const spanMs = this.#nowMs - (this.#startMs + oldest * this.#bucketMs);
    return (sum * 1000) / Math.max(spanMs, this.#bucketMs);
  }

  #advance(): void {
    this.#nowMs = Math.max(this.#nowMs, this.#clock.now());
    const head = Math.floor((this.#nowMs - this.#startMs) / this.#bucketMs);
    if (head <= this.#head) return;
    // After a gap longer than the window every slot is stale; clearing the ring once
    // is enough, however many buckets the gap spans.
    const stale = Math.min(head - this.#head, this.#counts.length);
    for (let i = 1; i <= stale; i++) this.#counts[(this.#head + i) % this.#counts.length] = 0;
    this.#head = head;
  }
}
