import { systemClock, type Clock } from '../time/clock.ts';
import { assertPositive } from '../validate.ts';

/**
 * How far back the accepted rate is measured. One second averages the even
 * spacing of a paced stream and a server's burst (a burst of B inflates the
 * estimate by at most B per window) while still describing the pace right at
 * the throttle, not a minute ago.
 */
export const ACCEPTED_WINDOW_MS = 1000;

/** The window is kept as this many counters, so recording an answer is O(1). */
const WINDOW_SLOTS = 20;
const SLOT_MS = ACCEPTED_WINDOW_MS / WINDOW_SLOTS;

/**
 * A throttle cuts the rate to this fraction of what the remote accepted.
 * CUBIC (RFC 9438) and the AWS SDKs use 0.7 of the rate they were sending;
 * the rate measured here is what the remote accepted, already at or just
 * above its limit, so a shallower cut is enough to stop the 429s and let a
 * token-bucket server refill. The shortfall on the way back up (C·K⁴/4, 7
 * requests at 50/s) is about what a small server burst hands back; 0.7 gave
 * 1% less throughput in the simulation of a 50/s server.
 */
export const RATE_DECREASE_FACTOR = 0.8;

/**
 * CUBIC's scaling constant, in requests/s per s³ (RFC 9438's 0.4, as the AWS
 * SDKs use for rates). With it the curve takes K = cbrt(wMax·0.2/0.4) seconds
 * back to the last throttled rate (2.9 s at 50/s, 7.9 s at 1000/s), lingers
 * there, and probes past it slowly at first: +1/s after 1.4 s, +3/s after 2 s.
 */
export const CUBIC_C = 0.4;

/**
 * After the first throttle the rate grows by doubling every this long until
 * the next one. The first throttle usually ends an unpaced start-up burst, and
 * what was accepted in those first milliseconds says little about the
 * remote's rate; doubling finds a rate of 50/s from 8/s in 1.3 s and of
 * 1000/s in 5 s, the overshoot costing the one throttle that ends it. Faster
 * doubling overshoots further within one window, so the accepted rate
 * measured at its end (the next wMax) falls short of the remote's limit.
 */
export const DISCOVERY_DOUBLING_MS = 500;

/**
 * The rate never goes below this. A throttle right after nothing was accepted
 * (the first request, or the first after an outage) measures 0/s; one per
 * second makes that cut a wait no longer than an ordinary retry backoff (1 s
 * base), and the curve grows from there. A remote limited to a few requests a
 * minute is better served by a `--rate` below it (the ceiling wins).
 */
export const MIN_RATE_PER_SEC = 1;

/** Where the controller is on its way. */
export type AdaptiveRatePhase = 'unpaced' | 'ceiling' | 'discovery' | 'cubic';

export interface AdaptiveRateOptions {
  /**
   * The user's rate (`--rate`): where pacing starts and a ceiling it never
   * passes. Without it, requests are not paced until the remote throttles.
   */
  ceilingPerSec?: number;
  /** Default: the system clock. */
  clock?: Clock;
}

/**
 * An adaptive request rate for one host, in the manner of CUBIC and the AWS
 * SDKs' adaptive retry mode. It only computes the rate: the caller reports
 * each request sent, each answer accepted and each throttle (429, 503), and
 * paces with `ratePerSec` (for example with `TokenBucket.setRate`).
 *
 * - It starts unpaced, or at the ceiling when one is given.
 * - A throttle measures the rate the remote accepted over the last
 *   {@link ACCEPTED_WINDOW_MS} (answers that were not throttles), takes the
 *   smaller of that and the rate now, and cuts to
 *   {@link RATE_DECREASE_FACTOR} of it. Throttles of requests sent before the
 *   cut are the same overload seen late and change nothing.
 * - After the first throttle the rate doubles every
 *   {@link DISCOVERY_DOUBLING_MS} until the next; after any later one it
 *   follows w(t) = wMax + C·(t − K)³, where wMax is the rate measured at the
 *   throttle: quickly back toward wMax, a plateau around it, then a probe
 *   above it that speeds up only while the remote keeps accepting.
 * - It never passes the ceiling and never goes below {@link MIN_RATE_PER_SEC}.
 *
 * The curve's clock moves with the requests, not the wall: each send moves it
 * by at most one interval at the current rate. A host that is idle, or sends
 * less than its pace allows, does not ramp up a rate it never tried; after a
 * quiet hour it resumes at the rate it had.
 */
export class AdaptiveRate {
  readonly #clock: Clock;
  readonly #ceilingPerSec: number | undefined;
  readonly #slots = new Array<number>(WINDOW_SLOTS).fill(0);
  #slotIndex = 0;
  #phase: AdaptiveRatePhase;
  // The rate the current phase started from: discovery's first rate; cubic's wMax.
  #baseRate = 0;
  #cubicK = 0;
  #curveMs = 0;
  #lastSendMs = 0;
  #cuts = 0;

  constructor(options: AdaptiveRateOptions = {}) {
    if (options.ceilingPerSec !== undefined) {
      assertPositive('ceilingPerSec', options.ceilingPerSec);
    }
    this.#clock = options.clock ?? systemClock;
    this.#ceilingPerSec = options.ceilingPerSec;
    this.#phase = options.ceilingPerSec === undefined ? 'unpaced' : 'ceiling';
    this.#slotIndex = Math.floor(this.#clock.now() / SLOT_MS);
  }

  /** The pace now, requests per second; undefined while requests are not paced. */
  get ratePerSec(): number | undefined {
    switch (this.#phase) {
      case 'unpaced':
        return undefined;
      case 'ceiling':
        return this.#ceilingPerSec;
      case 'discovery':
        return this.#bounded(this.#baseRate * 2 ** (this.#curveMs / DISCOVERY_DOUBLING_MS));
      case 'cubic': {
        const t = this.#curveMs / 1000 - this.#cubicK;
        return this.#bounded(this.#baseRate + CUBIC_C * t * t * t);
      }
    }
  }

  get ceilingPerSec(): number | undefined {
    return this.#ceilingPerSec;
  }

  get phase(): AdaptiveRatePhase {
    return this.#phase;
  }

  /** True once a throttle has cut the rate: the pace now follows the remote's answers. */
  get throttled(): boolean {
    return this.#cuts > 0;
  }

  /** The rate measured at the last throttle (CUBIC's wMax); undefined before the second. */
  get lastThrottledRatePerSec(): number | undefined {
    return this.#phase === 'cubic' ? this.#baseRate : undefined;
  }

  /** Answers accepted per second over the last window. */
  acceptedRatePerSec(): number {
    this.#rotate();
    let count = 0;
    for (const slot of this.#slots) count += slot;
    return (count * 1000) / ACCEPTED_WINDOW_MS;
  }

  /**
   * A request goes out now. Returns its ticket, to hand back with a throttle
   * so that a late answer to a request sent before a cut is recognized.
   */
  recordSend(): number {
    const nowMs = this.#clock.now();
    const rate = this.ratePerSec;
    if (rate !== undefined && (this.#phase === 'discovery' || this.#phase === 'cubic')) {
      // A wall clock stepping back must not run the curve backwards.
      const gapMs = Math.max(0, nowMs - this.#lastSendMs);
      this.#curveMs += Math.min(gapMs, 1000 / rate);
    }
    this.#lastSendMs = nowMs;
    return this.#cuts;
  }

  /** The remote accepted a request: any answer that is not a throttle. */
  recordAccepted(): void {
    this.#rotate();
    const last = WINDOW_SLOTS - 1;
    this.#slots[last] = (this.#slots[last] ?? 0) + 1;
  }

  /**
   * The remote throttled a request (a 429, or a 503) sent with `ticket`.
   * Returns whether the rate was cut: false for a request sent before the
   * last cut.
   */
  recordThrottle(ticket: number): boolean {
    if (ticket < this.#cuts) return false;
    const accepted = this.acceptedRatePerSec();
    const current = this.ratePerSec ?? Number.POSITIVE_INFINITY;
    const basis = Math.min(accepted, current);
    const cut = this.#bounded(basis * RATE_DECREASE_FACTOR);
    if (this.#cuts === 0) {
      this.#phase = 'discovery';
      this.#baseRate = cut;
    } else {
      this.#phase = 'cubic';
      this.#baseRate = basis;
      this.#cubicK = Math.cbrt((basis * (1 - RATE_DECREASE_FACTOR)) / CUBIC_C);
    }
    this.#curveMs = 0;
    this.#lastSendMs = this.#clock.now();
    this.#cuts++;
    return true;
  }

  #bounded(rate: number): number {
    const floored = Math.max(MIN_RATE_PER_SEC, rate);
    return this.#ceilingPerSec === undefined ? floored : Math.min(this.#ceilingPerSec, floored);
  }

  /** Moves the window to now: slots that fell out of it are cleared. */
  #rotate(): void {
    const index = Math.floor(this.#clock.now() / SLOT_MS);
    const steps = index - this.#slotIndex;
    if (steps <= 0) return;
    if (steps >= WINDOW_SLOTS) {
      this.#slots.fill(0);
    } else {
      this.#slots.copyWithin(0, steps);
      this.#slots.fill(0, WINDOW_SLOTS - steps);
    }
    this.#slotIndex = index;
  }
}
