/** A source of uniform numbers in [0, 1), like Math.random. Injected wherever jitter is used. */
export type Random = () => number;

/** The default random source for production code. */
export const systemRandom: Random = () => Math.random();

/**
 * A small seeded generator (mulberry32): the same seed gives the same sequence,
 * so a failing test or simulation replays exactly.
 */
export function seededRandom(seed: number): Random {
  if (!Number.isFinite(seed)) throw new TypeError(`seed must be a finite number, got ${seed}`);
  let state = Math.trunc(seed) >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
