import type { Clock } from '../time/clock.ts';
import { assertFiniteNumber, assertInteger, assertNonNegative } from '../validate.ts';

export const DEFAULT_MAX_ATTEMPTS = 5;
export const DEFAULT_MAX_RETRY_TIME_MS = 120_000;

/** What the outbox keeps of a budget: plain numbers, so it survives JSON and SQL. */
export interface RetryBudgetState {
  /** Attempts used so far. */
  attempts: number;
  /** When the budget's time started, in clock ms; absent until it starts. */
  startedAtMs?: number;
}

export interface RetryBudgetOptions {
  clock: Clock;
  /** Attempts in all, the first one included (`--attempts`). Default 5; Infinity for no limit. */
  maxAttempts?: number;
  /**
   * How long after the budget started the last attempt may start (`--retry-time`).
   * Default 120_000; Infinity for no limit.
   */
  maxTimeMs?: number;
  /** A state saved by {@link RetryBudget.save}, to carry on where it stopped. */
  state?: RetryBudgetState;
}

/** Which limit refused another attempt. */
export type RetryBudgetLimit = 'attempts' | 'time';

/**
 * A per-item retry budget in attempts and in total time. It only counts and
 * answers; the caller records attempts, because some calls use none (one
 * refused by an open breaker never reached the remote).
 */
export class RetryBudget {
  readonly maxAttempts: number;
  readonly maxTimeMs: number;
  readonly #clock: Clock;
  #attempts: number;
  #startedAtMs: number | undefined;

  constructor(options: RetryBudgetOptions) {
    const clock = (options as Partial<RetryBudgetOptions> | undefined)?.clock;
    if (typeof clock?.now !== 'function') {
      throw new TypeError(`clock must be a Clock, got ${clock === null ? 'null' : typeof clock}`);
    }
    const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
    const maxTimeMs = options.maxTimeMs ?? DEFAULT_MAX_RETRY_TIME_MS;
    if (maxAttempts !== Number.POSITIVE_INFINITY) assertInteger('maxAttempts', maxAttempts, 1);
    if (maxTimeMs !== Number.POSITIVE_INFINITY) assertNonNegative('maxTimeMs', maxTimeMs);
    const state = options.state ?? { attempts: 0 };
    assertInteger('state.attempts', state.attempts, 0);
    if (state.startedAtMs !== undefined) assertFiniteNumber('state.startedAtMs', state.startedAtMs);
    this.#clock = clock;
    this.maxAttempts = maxAttempts;
    this.maxTimeMs = maxTimeMs;
    this.#attempts = state.attempts;
    this.#startedAtMs = state.startedAtMs;
  }

  /** Attempts used so far. */
  get attempts(): number {
    return this.#attempts;
  }

  /** When the budget's time started, or undefined before it started. */
  get startedAtMs(): number | undefined {
    return this.#startedAtMs;
  }

  /** Time spent since the start (0 before it); never negative, even if the clock went back. */
  get elapsedMs(): number {
    return this.#startedAtMs === undefined ? 0 : Math.max(0, this.#clock.now() - this.#startedAtMs);
  }

  /** Starts the time budget now, unless it already started. */
  start(): void {
    this.#startedAtMs ??= this.#clock.now();
  }

  /** Counts one attempt (and starts the time budget if needed). */
  recordAttempt(): void {
    this.start();
    this.#attempts++;
  }

  /**
   * Which limit refuses another attempt that would start `delayMs` from now,
   * or undefined if it fits. An attempt starting exactly at the time limit fits.
   */
  limitHit(delayMs = 0): RetryBudgetLimit | undefined {
    if (!(delayMs >= 0)) throw new TypeError(`delayMs must be a number >= 0, got ${delayMs}`);
    if (this.#attempts >= this.maxAttempts) return 'attempts';
    if (this.elapsedMs + delayMs > this.maxTimeMs) return 'time';
    return undefined;
  }

  /** Whether another attempt starting `delayMs` from now fits the budget. */
  allows(delayMs = 0): boolean {
    return this.limitHit(delayMs) === undefined;
  }

  /** The state to store with the item; pass it back as `state` to restore. */
  save(): RetryBudgetState {
    return this.#startedAtMs === undefined
      ? { attempts: this.#attempts }
      : { attempts: this.#attempts, startedAtMs: this.#startedAtMs };
  }
}
