// Test-only: a Remote whose every call may be delayed, refused or have its
// answer lost, from a seeded random source, for engine-simulation.test.ts.
import { HttpError, NetworkError, TimeoutError } from '../errors/upsync-error.ts';
import type { Random } from '../random/random.ts';
import { MemoryRemote } from '../remote/memory-remote.ts';
import type {
  Remote,
  RemoteCallOptions,
  RemoteDeleteResult,
  RemoteItemState,
  RemoteListOptions,
  RemotePutRequest,
  RemotePutResult,
} from '../remote/remote.ts';
import type { ManualClock } from '../time/manual-clock.ts';

/** Chances per call, each in [0, 1]. */
export interface FaultProfile {
  /** Refused before anything is applied: 503 or 429 with Retry-After, 500, a network error. */
  readonly failBefore: number;
  /** Applied, then the answer is lost (a reset or a timeout after the write). */
  readonly failAfter: number;
  /** The answer waits on the clock, so calls of different keys complete out of order. */
  readonly delay: number;
  /** The longest such wait, and the longest Retry-After asked for. */
  readonly maxDelayMs: number;
}

export interface SimulatedRemoteOptions {
  readonly clock: ManualClock;
  readonly random: Random;
}

/** What the simulation did to the calls, for the summary line. */
export interface InjectedCounts {
  failedBefore: number;
  failedAfter: number;
  delayed: number;
}

/**
 * Wraps a MemoryRemote, which keeps the protocol's semantics (idempotency
 * replay per key, unchanged PUTs, DELETE of an absent item as done); this
 * class only decides, per call, what the network does to it. It has no
 * putBatch, so every write is its own request.
 */
export class SimulatedRemote implements Remote {
  readonly memory = new MemoryRemote();
  readonly id = this.memory.id;
  readonly injected: InjectedCounts = { failedBefore: 0, failedAfter: 0, delayed: 0 };
  /**
   * Writes that reached the remote but whose answer never reached the engine
   * (by Idempotency-Key, with their item's key).
   */
  readonly unanswered = new Map<string, string>();
  /** No faults while null (the end of a run). */
  faults: FaultProfile | null = null;
  readonly #clock: ManualClock;
  readonly #random: Random;

  constructor(options: SimulatedRemoteOptions) {
    this.#clock = options.clock;
    this.#random = options.random;
  }

  /** How many times each Idempotency-Key was applied (a replay is not). */
  appliedPerIdempotencyKey(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const change of this.memory.applied) {
      counts.set(change.idempotencyKey, (counts.get(change.idempotencyKey) ?? 0) + 1);
    }
    return counts;
  }

  list(options?: RemoteListOptions): AsyncIterable<RemoteItemState> {
    return this.memory.list(options);
  }

  stat(key: string, options: RemoteCallOptions = {}): Promise<RemoteItemState | null> {
    // A read applies nothing, so a lost answer is the same as a refusal.
    return this.#call(options, () => this.memory.stat(key, options), null);
  }

  put(request: RemotePutRequest, options: RemoteCallOptions = {}): Promise<RemotePutResult> {
    const write = { key: request.key, idempotencyKey: request.idempotencyKey };
    return this.#call(options, () => this.memory.put(request, options), write);
  }

  delete(
    key: string,
    options: RemoteCallOptions & { readonly idempotencyKey: string },
  ): Promise<RemoteDeleteResult> {
    const write = { key, idempotencyKey: options.idempotencyKey };
    return this.#call(options, () => this.memory.delete(key, options), write);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  async #call<T>(
    options: RemoteCallOptions,
    send: () => Promise<T>,
    write: { key: string; idempotencyKey: string } | null,
  ): Promise<T> {
    const result = await this.#faulty(options, send, write);
    if (write) this.unanswered.delete(write.idempotencyKey);
    return result;
  }

  async #faulty<T>(
    options: RemoteCallOptions,
    send: () => Promise<T>,
    write: { key: string; idempotencyKey: string } | null,
  ): Promise<T> {
    const faults = this.faults;
    if (!faults) return send();
    const roll = this.#random();
    // Whether the wait comes before the request reaches the remote or after.
    const delayFirst = this.#random() < 0.5;
    const delayMs = this.#random() < faults.delay ? this.#ms(faults.maxDelayMs) : 0;
    if (delayMs > 0) this.injected.delayed++;
    if (delayFirst && delayMs > 0) await this.#clock.sleep(delayMs, options.signal);
    if (roll < faults.failBefore) {
      this.injected.failedBefore++;
      throw this.#refusal(faults.maxDelayMs);
    }
    const result = await send();
    // Until the engine has the answer, it cannot know this write arrived (a
    // lost answer, or a shutdown that aborts the wait for it).
    if (write) this.unanswered.set(write.idempotencyKey, write.key);
    if (!delayFirst && delayMs > 0) await this.#clock.sleep(delayMs, options.signal);
    if (write && roll < faults.failBefore + faults.failAfter) {
      this.injected.failedAfter++;
      throw this.#random() < 0.5
        ? new NetworkError('the connection was reset after the request was sent')
        : new TimeoutError('no answer in time', 30_000);
    }
    return result;
  }

  #refusal(maxDelayMs: number): Error {
    const kind = Math.floor(this.#random() * 4);
    if (kind === 0) {
      return new HttpError(503, 'unavailable', { retryAfterMs: this.#ms(maxDelayMs) });
    }
    if (kind === 1) return new HttpError(429, 'slow down', { retryAfterMs: this.#ms(maxDelayMs) });
    if (kind === 2) return new HttpError(500, 'internal error');
    return new NetworkError('connection refused');
  }

  #ms(maxMs: number): number {
    return 1 + Math.floor(this.#random() * maxMs);
  }
}
