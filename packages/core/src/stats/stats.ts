import { systemClock, type Clock } from '../time/clock.ts';
import { assertInteger, assertNonNegative } from '../validate.ts';
import { RollingRate, type RollingRateOptions } from './rolling-rate.ts';

/** How a version a command took up ended. Exactly one per version. */
export const OUTCOMES = [
  'created',
  'updated',
  'deleted',
  'skipped',
  'errored',
  'timedOut',
] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** An HTTP status class, or `network` for a request that got no answer. */
export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx', 'network'] as const;
export type StatusClass = (typeof STATUS_CLASSES)[number];

export interface RequestCounts {
  total: number;
  /** Every class is present, 0 included, so a panel's columns do not come and go. */
  byStatus: Record<StatusClass, number>;
}

/** Plain data: it goes into the JSON report as is and survives JSON.stringify/parse. */
export interface StatsSnapshot extends Record<Outcome, number> {
  /** Time since the Stats was built. */
  elapsedMs: number;
  /** Versions taken up and not coalesced: the six outcomes plus `inProgress`. */
  attempted: number;
  inProgress: number;
  /** Part of `errored`, not an outcome of its own. */
  deadLettered: number;
  /** Versions replaced by a newer one before they were sent; never part of `attempted`. */
  coalesced: number;
  requests: RequestCounts & { byMethod: Record<string, RequestCounts> };
  retries: number;
  backoffMs: number;
  limiterWaitMs: number;
  bytesSent: number;
  /** Finished versions (any outcome) per second over the rolling window. */
  itemsPerSec: number;
}

export interface StatsOptions {
  /** Default: the system clock. */
  clock?: Clock;
  /** The window and bucket size of `itemsPerSec`; RollingRate's defaults (10 s of 500 ms buckets). */
  rate?: Omit<RollingRateOptions, 'clock'>;
}

export interface CheckInvariantOptions {
  /** Nothing may be in progress: the command has finished every version it took up. */
  settled?: boolean;
}

function emptyByStatus(): Record<StatusClass, number> {
  return { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0, network: 0 };
}

function statusClassOf(status: number | 'network'): StatusClass {
  if (status === 'network') return 'network';
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 100 || status > 599) {
    throw new TypeError(
      `status must be an HTTP status from 100 to 599 or "network", got ${typeof status === 'string' ? JSON.stringify(status) : String(status)}`,
    );
  }
  return `${Math.floor(status / 100)}xx` as StatusClass;
}

/**
 * What a command did, with the accounting invariant of shared/DESIGN.md: every
 * version a command takes up (`begin`) ends as exactly one outcome (`finish`), so
 * `attempted = created + updated + deleted + skipped + errored + timedOut + inProgress`
 * at all times, and with nothing in progress once the command is settled.
 *
 * Coalescing: a version replaced by a newer one before it was sent leaves through
 * `coalesce()` instead of `finish()`. It is taken out of `attempted` (which therefore
 * may go down) and counted in `coalesced`, so the invariant's six outcomes need no
 * seventh term and a burst of 50 writes that became one send reads as 1 attempted
 * and 49 coalesced. Code that learns of a replacement without having called
 * `begin()` for that version calls `begin(); coalesce()`.
 *
 * A finish without a begin is a bug in the caller's bookkeeping, not a condition to
 * absorb: it throws at once, where the bug is, instead of skewing the report.
 */
export class Stats {
  readonly #clock: Clock;
  readonly #startMs: number;
  readonly #rate: RollingRate;
  readonly #outcomes: Record<Outcome, number> = {
    created: 0,
    updated: 0,
    deleted: 0,
    skipped: 0,
    errored: 0,
    timedOut: 0,
  };
  // Kept apart from the outcomes (not derived from them) so that checkInvariant
  // checks this class's own arithmetic too.
  #attempted = 0;
  #inProgress = 0;
  #deadLettered = 0;
  #coalesced = 0;
  readonly #byStatus = emptyByStatus();
  readonly #byMethod = new Map<string, Record<StatusClass, number>>();
  #requests = 0;
  #retries = 0;
  #backoffMs = 0;
  #limiterWaitMs = 0;
  #bytesSent = 0;

  constructor(options: StatsOptions = {}) {
    const clock = options.clock ?? systemClock;
    this.#rate = new RollingRate({ ...options.rate, clock });
    this.#clock = clock;
    this.#startMs = clock.now();
  }

  /** Versions taken up and not coalesced (finished or not). */
  get attempted(): number {
    return this.#attempted;
  }

  /** Versions taken up that have no outcome yet; never negative. */
  get inProgress(): number {
    return this.#inProgress;
  }

  /** How many versions ended as `outcome` so far. */
  count(outcome: Outcome): number {
    return this.#outcomes[Stats.#outcome(outcome)];
  }

  /** `n` versions taken up by the command. */
  begin(n = 1): void {
    assertInteger('n', n);
    this.#attempted += n;
    this.#inProgress += n;
  }

  /** `n` versions taken up ended as `outcome`. */
  finish(outcome: Outcome, n = 1): void {
    Stats.#outcome(outcome);
    assertInteger('n', n);
    this.#take(`finish(${JSON.stringify(outcome)}, ${n})`, n);
    this.#outcomes[outcome] += n;
    this.#rate.record(n);
  }

  /**
   * `n` versions that ended as `outcome` and stayed pending are taken up again
   * (a resweep): the outcome is undone and they are in progress, so each still
   * ends as exactly one outcome, its last.
   */
  reopen(outcome: Outcome, n = 1): void {
    Stats.#outcome(outcome);
    assertInteger('n', n);
    if (this.#outcomes[outcome] < n) {
      throw new RangeError(`reopen(${JSON.stringify(outcome)}, ${n}) without as many ended`);
    }
    this.#outcomes[outcome] -= n;
    this.#inProgress += n;
  }

  /** `n` versions went to the dead-letter queue: they finish as errored, and count as dead-lettered. */
  deadLetter(n = 1): void {
    assertInteger('n', n);
    this.#take(`deadLetter(${n}) (outcome "errored")`, n);
    this.#outcomes.errored += n;
    this.#deadLettered += n;
    this.#rate.record(n);
  }

  /** `n` versions taken up were replaced by a newer version before they were sent. */
  coalesce(n = 1): void {
    assertInteger('n', n);
    this.#take(`coalesce(${n})`, n);
    this.#attempted -= n;
    this.#coalesced += n;
  }

  /** One request was made; `status` is the HTTP status, or `network` when no answer came. */
  recordRequest(method: string, status: number | 'network'): void {
    if (typeof method !== 'string' || method === '') {
      throw new TypeError(`method must be a non-empty string, got ${JSON.stringify(method)}`);
    }
    const statusClass = statusClassOf(status);
    let byStatus = this.#byMethod.get(method);
    if (!byStatus) {
      byStatus = emptyByStatus();
      this.#byMethod.set(method, byStatus);
    }
    byStatus[statusClass]++;
    this.#byStatus[statusClass]++;
    this.#requests++;
  }

  recordRetry(n = 1): void {
    assertInteger('n', n);
    this.#retries += n;
  }

  /** Time spent sleeping between attempts (what was actually slept, if cut short). */
  addBackoffMs(ms: number): void {
    assertNonNegative('ms', ms);
    this.#backoffMs += ms;
  }

  /** Time spent waiting for a rate or concurrency limiter. */
  addLimiterWaitMs(ms: number): void {
    assertNonNegative('ms', ms);
    this.#limiterWaitMs += ms;
  }

  addBytesSent(bytes: number): void {
    assertInteger('bytes', bytes);
    this.#bytesSent += bytes;
  }

  snapshot(): StatsSnapshot {
    const methods = [...this.#byMethod.keys()].sort();
    return {
      elapsedMs: Math.max(0, this.#clock.now() - this.#startMs),
      attempted: this.#attempted,
      inProgress: this.#inProgress,
      ...this.#outcomes,
      deadLettered: this.#deadLettered,
      coalesced: this.#coalesced,
      requests: {
        total: this.#requests,
        byStatus: { ...this.#byStatus },
        // fromEntries defines own properties, so a method named "__proto__" is data, not a prototype.
        byMethod: Object.fromEntries(
          methods.map((method) => {
            const byStatus = { ...(this.#byMethod.get(method) ?? emptyByStatus()) };
            const total = STATUS_CLASSES.reduce((sum, c) => sum + byStatus[c], 0);
            return [method, { total, byStatus }];
          }),
        ),
      },
      retries: this.#retries,
      backoffMs: this.#backoffMs,
      limiterWaitMs: this.#limiterWaitMs,
      bytesSent: this.#bytesSent,
      itemsPerSec: this.#rate.ratePerSec(),
    };
  }

  /** Throws an Error listing what does not add up; see {@link Stats.checkSnapshot}. */
  checkInvariant(options: CheckInvariantOptions = {}): void {
    Stats.checkSnapshot(this.snapshot(), options);
  }

  /**
   * Checks the accounting of a snapshot, e.g. one read back from a JSON report:
   * every count is a whole number >= 0, the six outcomes plus `inProgress` make
   * `attempted`, `deadLettered` is within `errored`, the requests add up, and with
   * `{ settled: true }` nothing is in progress. Throws an Error naming every
   * violation with the numbers involved.
   */
  static checkSnapshot(snapshot: StatsSnapshot, options: CheckInvariantOptions = {}): void {
    const problems: string[] = [];
    const counts: [string, number][] = [
      ['attempted', snapshot.attempted],
      ['inProgress', snapshot.inProgress],
      ...OUTCOMES.map((o): [string, number] => [o, snapshot[o]]),
      ['deadLettered', snapshot.deadLettered],
      ['coalesced', snapshot.coalesced],
      ['retries', snapshot.retries],
      ['requests.total', snapshot.requests.total],
    ];
    for (const [name, value] of counts) {
      if (!Number.isInteger(value) || value < 0) {
        problems.push(`${name} is ${String(value)}, not a whole number >= 0`);
      }
    }
    const finished = OUTCOMES.reduce((sum, o) => sum + snapshot[o], 0);
    if (snapshot.attempted !== finished + snapshot.inProgress) {
      const terms = OUTCOMES.map((o) => `${o} ${snapshot[o]}`).join(' + ');
      problems.push(
        `attempted ${snapshot.attempted} != ${terms} + inProgress ${snapshot.inProgress} (= ${finished + snapshot.inProgress})`,
      );
    }
    if (options.settled === true && snapshot.inProgress !== 0) {
      problems.push(`${snapshot.inProgress} still in progress, 0 expected once settled`);
    }
    if (snapshot.deadLettered > snapshot.errored) {
      problems.push(
        `deadLettered ${snapshot.deadLettered} > errored ${snapshot.errored} (dead letters are part of errored)`,
      );
    }
    const sumOf = (byStatus: Record<StatusClass, number>): number =>
      STATUS_CLASSES.reduce((sum, c) => sum + byStatus[c], 0);
    if (sumOf(snapshot.requests.byStatus) !== snapshot.requests.total) {
      problems.push(
        `requests.total ${snapshot.requests.total} != sum of requests.byStatus ${sumOf(snapshot.requests.byStatus)}`,
      );
    }
    let byMethodTotal = 0;
    for (const [method, counts] of Object.entries(snapshot.requests.byMethod)) {
      byMethodTotal += counts.total;
      if (sumOf(counts.byStatus) !== counts.total) {
        problems.push(
          `requests.byMethod[${JSON.stringify(method)}].total ${counts.total} != sum of its byStatus ${sumOf(counts.byStatus)}`,
        );
      }
    }
    if (byMethodTotal !== snapshot.requests.total) {
      problems.push(
        `requests.total ${snapshot.requests.total} != sum over requests.byMethod ${byMethodTotal}`,
      );
    }
    if (problems.length > 0) {
      throw new Error(`stats accounting does not hold: ${problems.join('; ')}`);
    }
  }

  static #outcome(outcome: unknown): Outcome {
    if (!(OUTCOMES as readonly unknown[]).includes(outcome)) {
      const shown = typeof outcome === 'string' ? JSON.stringify(outcome) : String(outcome);
      throw new TypeError(`outcome must be one of ${OUTCOMES.join(', ')}, got ${shown}`);
    }
    return outcome as Outcome;
  }

  #take(call: string, n: number): void {
    if (n > this.#inProgress) {
      throw new Error(
        `Stats.${call}: only ${this.#inProgress} in progress; every version must be begun before it ends (a bookkeeping bug)`,
      );
    }
    this.#inProgress -= n;
  }
}
