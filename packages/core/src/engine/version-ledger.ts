import type { Outcome, Stats } from '../stats/stats.ts';
import type { Delivery } from './engine-types.ts';
import { describeValue } from './describe-value.ts';

interface OpenVersion {
  readonly key: string;
  readonly ordered: boolean;
}

/**
 * The engine's accounting: which versions this command took up and has not
 * finished, so every version ends as exactly one outcome in Stats (or as
 * coalesced), however the stages reach it. It also keeps the promises of
 * awaited pushes. Only the engine's stages write to it, in one process.
 */
export class VersionLedger {
  readonly #stats: Stats;
  readonly #open = new Map<number, OpenVersion>();
  /** The open seqs of each key: per-key questions must not scan every open version (10,000 in a big sync). */
  readonly #openByKey = new Map<string, Set<number>>();
  /** Rows finished for this command (timed out, refused) that stay in `pending`. */
  readonly #stale = new Map<string, Map<number, Outcome>>();
  readonly #waiters = new Map<number, ((delivery: Delivery) => void)[]>();

  constructor(options: { stats: Stats }) {
    if (typeof options?.stats?.begin !== 'function') {
      throw new TypeError(`stats must be a Stats, got ${describeValue(options?.stats)}`);
    }
    this.#stats = options.stats;
  }

  get openCount(): number {
    return this.#open.size;
  }

  isOpen(seq: number): boolean {
    return this.#open.has(seq);
  }

  begin(key: string, seq: number, ordered: boolean): void {
    if (this.#open.has(seq)) return;
    this.#add(key, seq, ordered);
    this.#stats.begin();
  }

  #add(key: string, seq: number, ordered: boolean): void {
    this.#open.set(seq, { key, ordered });
    const seqs = this.#openByKey.get(key);
    if (seqs) seqs.add(seq);
    else this.#openByKey.set(key, new Set([seq]));
  }

  /** Closes an open version; false when it was not open. */
  #remove(seq: number): boolean {
    const version = this.#open.get(seq);
    if (!version) return false;
    this.#open.delete(seq);
    const seqs = this.#openByKey.get(version.key);
    seqs?.delete(seq);
    if (seqs?.size === 0) this.#openByKey.delete(version.key);
    return true;
  }

  /** The open versions of `key` a supersede by `seq` removes: older, unordered, not held. */
  supersededBy(key: string, seq: number, held: ReadonlySet<number>): number[] {
    const gone: number[] = [];
    for (const openSeq of this.#openByKey.get(key) ?? []) {
      if (openSeq < seq && !this.#open.get(openSeq)?.ordered && !held.has(openSeq)) {
        gone.push(openSeq);
      }
    }
    return gone;
  }

  /** Versions replaced by `by` before they were sent; an awaited push follows its replacement. */
  coalesce(seqs: readonly number[], by: number): void {
    for (const seq of seqs) {
      if (!this.#remove(seq)) continue;
      this.#stats.coalesce();
      const waiting = this.#waiters.get(seq);
      if (waiting) {
        this.#waiters.delete(seq);
        const later = this.#waiters.get(by) ?? [];
        later.push(...waiting);
        this.#waiters.set(by, later);
      }
    }
  }

  /**
   * The version ended. A row already finished earlier in this command (it
   * stayed pending and was sent again) is taken up again first, so it counts
   * once per ending and the invariant holds.
   */
  finish(
    key: string,
    seq: number,
    outcome: Outcome,
    details: { deadLettered?: boolean; error?: string | null; stays?: boolean } = {},
  ): void {
    if (!this.#remove(seq)) this.#stats.begin();
    if (details.deadLettered) this.#stats.deadLetter();
    else this.#stats.finish(outcome);
    const stale = this.#stale.get(key);
    if (details.stays) {
      if (stale) stale.set(seq, outcome);
      else this.#stale.set(key, new Map([[seq, outcome]]));
    } else {
      stale?.delete(seq);
      if (stale?.size === 0) this.#stale.delete(key);
    }
    const waiting = this.#waiters.get(seq);
    if (!waiting) return;
    this.#waiters.delete(seq);
    const delivery: Delivery = {
      key,
      seq,
      outcome,
      deadLettered: details.deadLettered ?? false,
      ...(details.error ? { error: details.error } : {}),
    };
    for (const resolve of waiting) resolve(delivery);
  }

  /** Whether the version ended as timed out in this command and stays pending. */
  timedOut(key: string, seq: number): boolean {
    return this.#stale.get(key)?.get(seq) === 'timedOut';
  }

  /**
   * Takes a version this command timed out (it stayed pending) up again: its
   * outcome is undone, so whatever it ends as next is its one outcome. False
   * when the version did not end as timed out here.
   */
  reopen(key: string, seq: number, ordered: boolean): boolean {
    if (!this.timedOut(key, seq)) return false;
    const stale = this.#stale.get(key);
    stale?.delete(seq);
    if (stale?.size === 0) this.#stale.delete(key);
    this.#stats.reopen('timedOut');
    this.#add(key, seq, ordered);
    return true;
  }

  /** True when `key` has rows this command finished that are still pending (a new push supersedes them). */
  hasStale(key: string): boolean {
    return (this.#stale.get(key)?.size ?? 0) > 0;
  }

  forgetStale(key: string): void {
    this.#stale.delete(key);
  }

  /** Open versions of `key` up to `maxSeq`, oldest first. */
  openOf(key: string, maxSeq: number): number[] {
    const seqs: number[] = [];
    for (const seq of this.#openByKey.get(key) ?? []) if (seq <= maxSeq) seqs.push(seq);
    return seqs.sort((a, b) => a - b);
  }

  /** Every open version, e.g. to finish as timed out on shutdown. */
  openVersions(): { key: string; seq: number }[] {
    return [...this.#open].map(([seq, { key }]) => ({ key, seq }));
  }

  /** Settles (never rejects) when the version ends. */
  watch(seq: number): Promise<Delivery> {
    return new Promise((resolve) => {
      const list = this.#waiters.get(seq) ?? [];
      list.push(resolve);
      this.#waiters.set(seq, list);
    });
  }
}
