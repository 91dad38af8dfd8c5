import { systemClock, type Clock } from '../time/clock.ts';
import { Emitter, type Listener } from '../events/emitter.ts';
import { CircuitOpenError, UpsyncError } from '../errors/upsync-error.ts';
import { assertFiniteNumber, assertInteger, assertPositive } from '../validate.ts';

export type BreakerStateName = 'closed' | 'open' | 'half-open';

/**
 * A breaker's state as plain JSON, to save and restore across restarts (a
 * killed service worker must not hammer a host it had given up on).
 */
export interface BreakerState {
  state: BreakerStateName;
  /** Failures since the last success (reopens included). */
  consecutiveFailures: number;
  /** When the current (or last) open period began; null while closed. */
  openedAtMs: number | null;
  /** The current open period; the next reopen doubles it. The base period while closed. */
  openMs: number;
  /** `openedAtMs + openMs`, for readers; restore() recomputes it and ignores this field. */
  retryAtMs: number | null;
}

/** One call's right to go through. Report how it ended exactly once; later reports are ignored. */
export interface BreakerPermit {
  /** True for the single call a half-open breaker lets through. */
  readonly probe: boolean;
  /** The remote answered (any answer that says it is up). */
  success(): void;
  /** The remote looked down: a network failure, timeout, 5xx, 429. */
  failure(): void;
  /**
   * The call ended without telling anything about the remote (the caller
   * aborted). Frees the probe slot, so an abandoned probe cannot wedge the
   * breaker half-open.
   */
  cancel(): void;
}

export interface BreakerTransition {
  readonly from: BreakerStateName;
  readonly to: BreakerStateName;
  readonly atMs: number;
  /** When a probe is let through; null when closing. */
  readonly retryAtMs: number | null;
}

export interface CircuitBreakerEvents {
  /**
   * Every transition. open -> half-open is noticed when the breaker is next
   * asked (it keeps no timer), so it fires then, not at the exact retry time.
   */
  state: BreakerTransition;
}

export interface CircuitBreakerOptions {
  /** Consecutive failures that open the breaker; an integer >= 1. Default 5. */
  failureThreshold?: number;
  /**
   * The first open period. Default 5000: long enough to give a struggling host
   * a real rest (a 1 s break is shorter than one retry backoff and would mostly
   * add probes), short enough that a blip costs little; doubling reaches the
   * 5 min cap after six reopens (5, 10, 20, 40, 80, 160, 300 s).
   */
  openMs?: number;
  /** The cap on the open period. Default 300_000 (5 min). */
  maxOpenMs?: number;
  /**
   * Which errors from execute() count against the remote. Default: any error
   * except a non-retryable UpsyncError (a 400 or 401 means the host is up, so
   * it counts as a success for the breaker).
   */
  isFailure?: (error: unknown) => boolean;
  /** A state saved with snapshot(). An open state whose retry time has passed comes back half-open. */
  restore?: BreakerState;
  /** Named in CircuitOpenError messages, e.g. the host. */
  name?: string;
  /** Default: the system clock. */
  clock?: Clock;
}

const STATE_NAMES: readonly BreakerStateName[] = ['closed', 'open', 'half-open'];

const defaultIsFailure = (error: unknown): boolean =>
  !(error instanceof UpsyncError) || error.retryable;

/**
 * A circuit breaker: closed, open after `failureThreshold` consecutive
 * failures, half-open (one probe) when the open period ends. Each reopen
 * doubles the period up to `maxOpenMs`; a probe success closes it and resets
 * the period. It keeps no timer: the open period is checked against the clock
 * whenever it is asked.
 */
export class CircuitBreaker {
  readonly #failureThreshold: number;
  readonly #baseOpenMs: number;
  readonly #maxOpenMs: number;
  readonly #isFailure: (error: unknown) => boolean;
  readonly #label: string;
  readonly #clock: Clock;
  readonly #events = new Emitter<CircuitBreakerEvents>();
  #state: BreakerStateName = 'closed';
  #failures = 0;
  #openedAtMs = 0;
  #periodMs: number;
  #probeOut = false;
  // Bumped on every transition; a permit from an earlier state reports into the void,
  // so a slow call started while closed cannot close (or reopen) a later cycle.
  #generation = 0;

  constructor(options: CircuitBreakerOptions = {}) {
    const failureThreshold = options.failureThreshold ?? 5;
    const openMs = options.openMs ?? 5000;
    const maxOpenMs = options.maxOpenMs ?? 300_000;
    assertInteger('failureThreshold', failureThreshold, 1);
    assertPositive('openMs', openMs);
    assertPositive('maxOpenMs', maxOpenMs);
    if (maxOpenMs < openMs) {
      throw new TypeError(`maxOpenMs must be >= openMs (${openMs}), got ${maxOpenMs}`);
    }
    if (options.isFailure !== undefined && typeof options.isFailure !== 'function') {
      throw new TypeError(`isFailure must be a function, got ${typeof options.isFailure}`);
    }
    this.#failureThreshold = failureThreshold;
    this.#baseOpenMs = openMs;
    this.#maxOpenMs = maxOpenMs;
    this.#periodMs = openMs;
    this.#isFailure = options.isFailure ?? defaultIsFailure;
    this.#label = options.name === undefined ? 'circuit' : `circuit for ${options.name}`;
    this.#clock = options.clock ?? systemClock;
    if (options.restore !== undefined) this.#restore(options.restore);
  }

  /** The state now; reading it may move an expired open state to half-open. */
  get state(): BreakerStateName {
    this.#refresh();
    return this.#state;
  }

  on<K extends keyof CircuitBreakerEvents>(
    event: K,
    listener: Listener<CircuitBreakerEvents[K]>,
  ): () => void {
    return this.#events.on(event, listener);
  }

  /**
   * A permit for one call, or a CircuitOpenError (thrown) while open, or while
   * half-open with the probe already out. A refusal is not a failure and uses
   * no retry attempt.
   */
  acquire(): BreakerPermit {
    this.#refresh();
    const nowMs = this.#clock.now();
    if (this.#state === 'open') {
      const retryAtMs = this.#openedAtMs + this.#periodMs;
      throw new CircuitOpenError(
        `${this.#label} is open; next probe in ${retryAtMs - nowMs} ms`,
        retryAtMs,
      );
    }
    if (this.#state === 'half-open') {
      if (this.#probeOut) {
        // The probe's outcome decides; until then, ask again after one base period.
        const retryAtMs = nowMs + this.#baseOpenMs;
        throw new CircuitOpenError(`${this.#label} is half-open and its probe is out`, retryAtMs);
      }
      this.#probeOut = true;
      return this.#permit(true);
    }
    return this.#permit(false);
  }

  /**
   * Runs `fn` through the breaker: refused at once with a CircuitOpenError when
   * open; otherwise the outcome is recorded (see `isFailure`). An abort rejects
   * with `signal.reason` straight away and records nothing.
   */
  async execute<T>(
    fn: (signal: AbortSignal | undefined) => T | Promise<T>,
    signal?: AbortSignal,
  ): Promise<T> {
    if (signal?.aborted) throw signal.reason;
    const permit = this.acquire();
    let result: T;
    try {
      result = await untilAborted(
        Promise.resolve().then(() => fn(signal)),
        signal,
      );
    } catch (error) {
      if (signal?.aborted) permit.cancel();
      else if (this.#countsAsFailure(error)) permit.failure();
      else permit.success();
      throw error;
    }
    permit.success();
    return result;
  }

  snapshot(): BreakerState {
    const state = this.state;
    const opened = state !== 'closed';
    return {
      state,
      consecutiveFailures: this.#failures,
      openedAtMs: opened ? this.#openedAtMs : null,
      openMs: this.#periodMs,
      retryAtMs: opened ? this.#openedAtMs + this.#periodMs : null,
    };
  }

  #countsAsFailure(error: unknown): boolean {
    try {
      return this.#isFailure(error);
    } catch {
      // A throwing classifier must not leave the permit unsettled (a probe would
      // wedge the breaker half-open); count the call against the remote.
      return true;
    }
  }

  #permit(probe: boolean): BreakerPermit {
    const generation = this.#generation;
    let settled = false;
    const settle = (outcome: 'success' | 'failure' | 'cancel'): void => {
      if (settled) return;
      settled = true;
      if (generation !== this.#generation) return;
      if (probe) this.#probeOut = false;
      if (outcome !== 'cancel') this.#record(outcome === 'success', probe);
    };
    return {
      probe,
      success: () => settle('success'),
      failure: () => settle('failure'),
      cancel: () => settle('cancel'),
    };
  }

  #record(ok: boolean, probe: boolean): void {
    if (ok) {
      this.#failures = 0;
      if (probe) {
        this.#periodMs = this.#baseOpenMs;
        this.#moveTo('closed');
      }
      return;
    }
    this.#failures++;
    if (probe) {
      this.#periodMs = Math.min(this.#periodMs * 2, this.#maxOpenMs);
      this.#open();
    } else if (this.#failures >= this.#failureThreshold) {
      this.#open();
    }
  }

  #open(): void {
    this.#openedAtMs = this.#clock.now();
    this.#moveTo('open');
  }

  #refresh(): void {
    if (this.#state === 'open' && this.#clock.now() >= this.#openedAtMs + this.#periodMs) {
      this.#moveTo('half-open');
    }
  }

  #moveTo(to: BreakerStateName): void {
    const from = this.#state;
    this.#state = to;
    this.#generation++;
    this.#probeOut = false;
    this.#events.emit('state', {
      from,
      to,
      atMs: this.#clock.now(),
      retryAtMs: to === 'closed' ? null : this.#openedAtMs + this.#periodMs,
    });
  }

  #restore(saved: BreakerState): void {
    if (typeof saved !== 'object' || saved === null) {
      throw new TypeError(`restore must be a BreakerState object, got ${String(saved)}`);
    }
    if (!STATE_NAMES.includes(saved.state)) {
      throw new TypeError(
        `restore.state must be one of ${STATE_NAMES.join(', ')}, got ${JSON.stringify(saved.state)}`,
      );
    }
    assertInteger('restore.consecutiveFailures', saved.consecutiveFailures);
    assertPositive('restore.openMs', saved.openMs);
    const nowMs = this.#clock.now();
    // The saved period may come from a config with other bounds; keep it within ours.
    this.#periodMs = Math.min(Math.max(saved.openMs, this.#baseOpenMs), this.#maxOpenMs);
    this.#failures = saved.consecutiveFailures;
    if (saved.state === 'closed') {
      this.#periodMs = this.#baseOpenMs;
      this.#failures = Math.min(saved.consecutiveFailures, this.#failureThreshold - 1);
      return;
    }
    if (saved.state === 'open' || saved.openedAtMs !== null) {
      assertFiniteNumber('restore.openedAtMs', saved.openedAtMs);
    }
    // A time in the future (saved under a clock that ran ahead) would stretch the
    // wait past maxOpenMs; it cannot have opened later than now.
    this.#openedAtMs = Math.min(saved.openedAtMs ?? nowMs, nowMs);
    // Restored half-open has no probe out: whoever held it died with the old process.
    this.#state = saved.state;
  }
}

/** Settles like `promise`, or rejects with `signal.reason` as soon as it aborts. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- pass fn's rejection through as is
        reject(error);
      },
    );
  });
}
