import { systemClock, systemRandom, type Clock, type Random } from '@upsync/core';

export interface FaultSettings {
  /** Requests per second allowed per token, with a burst; null for no limit. */
  rateLimit: { requestsPerSecond: number; burst: number } | null;
  /** Shares (0 to 1) of requests answered 429, 500 or 503 at random. Their sum is at most 1. */
  share429: number;
  share500: number;
  share503: number;
  /** Share of requests whose connection is destroyed without an answer. */
  shareReset: number;
  /** Added before every project request is handled. */
  latencyMs: number;
  /** Share of listings answered with truncated JSON. */
  shareMalformedListing: number;
  /** The form of Retry-After on 429 and 503: delta-seconds, HTTP-date, or either at random. */
  retryAfter: 'seconds' | 'date' | 'mixed';
  /** The wait a random 429 or 503 asks for. */
  retryAfterSeconds: number;
}

export type FaultDecision =
  | { readonly kind: 'pass' }
  | { readonly kind: 'reset' }
  | { readonly kind: 'status'; readonly status: 429 | 500 | 503; readonly retryAfter?: string };

export interface FaultInjectorOptions {
  settings?: Partial<FaultSettings>;
  /** Every random choice comes from here, so a seeded source makes a run repeat exactly. */
  random?: Random;
  clock?: Clock;
}

const none: FaultSettings = {
  rateLimit: null,
  share429: 0,
  share500: 0,
  share503: 0,
  shareReset: 0,
  latencyMs: 0,
  shareMalformedListing: 0,
  retryAfter: 'seconds',
  retryAfterSeconds: 1,
};

function show(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}

function share(name: string, value: unknown): number {
  if (typeof value !== 'number' || !(value >= 0 && value <= 1)) {
    throw new TypeError(`${name} must be a number from 0 to 1, got ${show(value)}`);
  }
  return value;
}

function nonNegative(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new TypeError(`${name} must be a finite number >= 0, got ${show(value)}`);
  }
  return value;
}

/** Checks a partial settings object (from flags or the admin route) and merges it over `base`. */
function merge(base: FaultSettings, patch: unknown): FaultSettings {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) {
    throw new TypeError(`fault settings must be an object, got ${show(patch)}`);
  }
  const next: FaultSettings = { ...base };
  for (const [name, value] of Object.entries(patch as Record<string, unknown>)) {
    switch (name) {
      case 'rateLimit': {
        if (value === null) {
          next.rateLimit = null;
          break;
        }
        const limit = value as { requestsPerSecond?: unknown; burst?: unknown };
        const requestsPerSecond = nonNegative(
          'rateLimit.requestsPerSecond',
          limit?.requestsPerSecond,
        );
        if (requestsPerSecond === 0) {
          throw new TypeError('rateLimit.requestsPerSecond must be > 0, got 0');
        }
        const burst = limit.burst === undefined ? Math.max(1, requestsPerSecond) : limit.burst;
        if (typeof burst !== 'number' || !Number.isInteger(burst) || burst < 1) {
          throw new TypeError(`rateLimit.burst must be an integer >= 1, got ${show(burst)}`);
        }
        next.rateLimit = { requestsPerSecond, burst };
        break;
      }
      case 'share429':
      case 'share500':
      case 'share503':
      case 'shareReset':
      case 'shareMalformedListing':
        next[name] = share(name, value);
        break;
      case 'latencyMs':
      case 'retryAfterSeconds':
        next[name] = nonNegative(name, value);
        break;
      case 'retryAfter':
        if (value !== 'seconds' && value !== 'date' && value !== 'mixed') {
          throw new TypeError(
            `retryAfter must be "seconds", "date" or "mixed", got ${show(value)}`,
          );
        }
        next.retryAfter = value;
        break;
      default:
        throw new TypeError(`unknown fault setting ${show(name)}`);
    }
  }
  if (next.share429 + next.share500 + next.share503 > 1) {
    throw new TypeError(
      `share429 + share500 + share503 must be at most 1, got ${next.share429 + next.share500 + next.share503}`,
    );
  }
  return next;
}

/**
 * Fault injection for tests, demos and benchmarks: off unless configured.
 * Decides, per request, whether to pass, answer 429/500/503 or reset the
 * connection, and keeps a token bucket per token for the rate limit.
 */
export class FaultInjector {
  readonly #random: Random;
  readonly #clock: Clock;
  #settings: FaultSettings;
  readonly #buckets = new Map<string, { tokens: number; atMs: number }>();

  constructor(options: FaultInjectorOptions = {}) {
    if (options.random !== undefined && typeof options.random !== 'function') {
      throw new TypeError(`random must be a function, got ${show(options.random)}`);
    }
    this.#random = options.random ?? systemRandom;
    this.#clock = options.clock ?? systemClock;
    this.#settings = merge(none, options.settings ?? {});
  }

  get settings(): FaultSettings {
    return structuredClone(this.#settings);
  }

  /** Applies a partial change at run time; throws a TypeError (changing nothing) when invalid. */
  configure(patch: unknown): FaultSettings {
    this.#settings = merge(this.#settings, patch);
    if ('rateLimit' in (patch as object)) this.#buckets.clear();
    return this.settings;
  }

  /** Turns every fault off. */
  reset(): FaultSettings {
    this.#settings = { ...none };
    this.#buckets.clear();
    return this.settings;
  }

  get latencyMs(): number {
    return this.#settings.latencyMs;
  }

  /** What to do with a request made with the token whose id is `principalId`. */
  decide(principalId: string): FaultDecision {
    const s = this.#settings;
    if (s.rateLimit) {
      const waitSeconds = this.#take(principalId, s.rateLimit);
      if (waitSeconds > 0) {
        return { kind: 'status', status: 429, retryAfter: this.#retryAfter(waitSeconds) };
      }
    }
    if (s.shareReset > 0 && this.#random() < s.shareReset) return { kind: 'reset' };
    const statusShare = s.share429 + s.share500 + s.share503;
    if (statusShare > 0) {
      const draw = this.#random();
      if (draw < s.share429) {
        return { kind: 'status', status: 429, retryAfter: this.#retryAfter(s.retryAfterSeconds) };
      }
      if (draw < s.share429 + s.share500) return { kind: 'status', status: 500 };
      if (draw < statusShare) {
        return { kind: 'status', status: 503, retryAfter: this.#retryAfter(s.retryAfterSeconds) };
      }
    }
    return { kind: 'pass' };
  }

  /** Whether this listing should be answered with broken JSON. */
  malformListing(): boolean {
    const share = this.#settings.shareMalformedListing;
    return share > 0 && this.#random() < share;
  }

  /** Takes one token; returns 0 when there was one, else the whole seconds until there is. */
  #take(id: string, limit: { requestsPerSecond: number; burst: number }): number {
    const nowMs = this.#clock.now();
    const bucket = this.#buckets.get(id) ?? { tokens: limit.burst, atMs: nowMs };
    bucket.tokens = Math.min(
      limit.burst,
      bucket.tokens + ((nowMs - bucket.atMs) / 1000) * limit.requestsPerSecond,
    );
    bucket.atMs = nowMs;
    this.#buckets.set(id, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / limit.requestsPerSecond));
  }

  #retryAfter(seconds: number): string {
    const whole = Math.max(0, Math.ceil(seconds));
    const form =
      this.#settings.retryAfter === 'mixed'
        ? this.#random() < 0.5
          ? 'seconds'
          : 'date'
        : this.#settings.retryAfter;
    if (form === 'seconds') return String(whole);
    // An HTTP-date has whole seconds: round up so the wait is never shorter than asked.
    const atMs = Math.ceil((this.#clock.now() + whole * 1000) / 1000) * 1000;
    return new Date(atMs).toUTCString();
  }
}
