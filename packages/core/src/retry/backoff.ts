import { systemRandom, type Random } from '../random/random.ts';
import { assertFiniteNumber, assertInteger, assertPositive } from '../validate.ts';

/**
 * The delay before retry number `attempt` (1 for the first retry, i.e. after
 * the first failure). `previousDelayMs` is what this backoff returned for the
 * previous retry; only decorrelated jitter uses it.
 */
export type Backoff = (attempt: number, previousDelayMs?: number) => number;

/**
 * - `full`: uniform in [0, ceiling] (AWS "full jitter"); spreads a crowd of
 *   clients the most, so it is the default.
 * - `decorrelated`: min(capMs, uniform in [baseMs, previous * 3]) (AWS
 *   "decorrelated jitter"); never shorter than baseMs, and it ignores factor.
 * - `none`: the ceiling itself, for tests and for callers that jitter elsewhere.
 */
export type Jitter = 'full' | 'decorrelated' | 'none';

export interface ExponentialBackoffOptions {
  /** The ceiling of the first retry, and the floor of decorrelated jitter. Default 1000. */
  baseMs?: number;
  /** No single delay is longer than this. Default 30_000. */
  capMs?: number;
  /** How much the ceiling grows per attempt. Default 2. */
  factor?: number;
  /** Default 'full'. */
  jitter?: Jitter;
  /** Default systemRandom; pass seededRandom(seed) to replay a sequence. */
  random?: Random;
}

export const DEFAULT_BACKOFF_BASE_MS = 1_000;
export const DEFAULT_BACKOFF_CAP_MS = 30_000;
export const DEFAULT_BACKOFF_FACTOR = 2;

const JITTERS: readonly Jitter[] = ['full', 'decorrelated', 'none'];

/**
 * Exponential backoff: the ceiling of retry `n` is min(capMs, baseMs * factor^(n-1)),
 * and the jitter picks the delay from it. The result is a stateless function, so
 * a retry schedule restored from the outbox carries on where it stopped.
 */
export function exponentialBackoff(options: ExponentialBackoffOptions = {}): Backoff {
  const baseMs = options.baseMs ?? DEFAULT_BACKOFF_BASE_MS;
  const capMs = options.capMs ?? DEFAULT_BACKOFF_CAP_MS;
  const factor = options.factor ?? DEFAULT_BACKOFF_FACTOR;
  const jitter = options.jitter ?? 'full';
  const random = options.random ?? systemRandom;
  assertPositive('baseMs', baseMs);
  assertPositive('capMs', capMs);
  if (capMs < baseMs) {
    throw new TypeError(`capMs must be >= baseMs (${baseMs}), got ${capMs}`);
  }
  assertFiniteNumber('factor', factor);
  if (factor < 1) throw new TypeError(`factor must be >= 1, got ${factor}`);
  if (!JITTERS.includes(jitter)) {
    throw new TypeError(`jitter must be one of ${JITTERS.join(', ')}, got ${String(jitter)}`);
  }
  if (typeof random !== 'function') {
    throw new TypeError(`random must be a function returning [0, 1), got ${String(random)}`);
  }

  // baseMs > 0 and factor >= 1, so a huge attempt overflows to Infinity (which
  // the cap absorbs), never to NaN.
  const ceilingMs = (attempt: number): number => Math.min(capMs, baseMs * factor ** (attempt - 1));

  // A Random that breaks its [0, 1) contract must not push a delay out of bounds.
  const uniform = (): number => {
    const r = random();
    return r >= 0 && r < 1 ? r : 0;
  };

  return (attempt, previousDelayMs) => {
    assertInteger('attempt', attempt, 1);
    if (jitter === 'none') return ceilingMs(attempt);
    if (jitter === 'full') return uniform() * ceilingMs(attempt);
    // The outbox stores attempts but not the previous delay, so a schedule
    // restored without one resumes from the ceiling of the previous attempt
    // instead of falling back to baseMs.
    const previousMs =
      previousDelayMs !== undefined && Number.isFinite(previousDelayMs)
        ? previousDelayMs
        : attempt > 1
          ? ceilingMs(attempt - 1)
          : baseMs;
    // Clamped to [baseMs, capMs]: a previous delay this backoff could not have
    // given must neither invert the range nor overflow it (0 * Infinity is NaN).
    const highMs = Math.min(capMs, Math.max(baseMs, previousMs)) * 3;
    return Math.min(capMs, baseMs + uniform() * (highMs - baseMs));
  };
}
