import type { Clock, TimerHandle } from '../time/clock.ts';
import { assertNonNegative } from '../validate.ts';

/**
 * How one group paces its sends. A group is one key (the per-key debounce) or a
 * whole store or table (the backup style).
 *
 * - `leading: true`: a change with no send of the group started in the last
 *   `max(intervalMs, minGapMs)` goes at once and opens a window; changes within
 *   the window wait for its end and go together then.
 * - `leading: false`: changes are buffered; the buffer goes `intervalMs` after
 *   the last change, but no later than `maxWaitMs` after the first buffered one
 *   (default `intervalMs`, which makes a fixed buffer window), and never sooner
 *   than `minGapMs` after the previous send started.
 */
export interface GroupSettings {
  leading: boolean;
  intervalMs: number;
  minGapMs?: number;
  /** Trailing groups only: the longest a buffered change waits while changes keep coming. */
  maxWaitMs?: number;
}

/** The run mode default: a per-key debounce of 10 s that sends the first change at once. */
export const DEFAULT_DEBOUNCE: GroupSettings = { leading: true, intervalMs: 10_000 };

/** The web-app backup style: a 2 s buffer window and at least 5 s between sends. */
export const DEFAULT_BUFFER: GroupSettings = { leading: false, intervalMs: 2_000, minGapMs: 5_000 };

export interface ScheduleOptions {
  /** Never coalesced with another change, and released in push order. */
  ordered?: boolean;
  /** Due at once, ahead of the group's window (still after a send in progress). */
  immediate?: boolean;
  /** When the change happened; default now. Used when reloading an outbox. */
  atMs?: number;
}

export interface ScheduledChange<T> {
  readonly key: string;
  readonly value: T;
  readonly atMs: number;
  readonly ordered: boolean;
  readonly immediate: boolean;
}

/** Everything a group had queued, handed to the dispatcher in push order. */
export interface Release<T> {
  readonly groupId: string;
  readonly changes: readonly ScheduledChange<T>[];
  readonly releasedAtMs: number;
  /** True when an immediate-lane change is among them: dispatch ahead of the rest. */
  readonly immediate: boolean;
}

/**
 * What became of a release. Only sends open windows: `sent: false` (every
 * change was skipped) leaves the group's pacing as it was. `startedAtMs` is
 * when the send really started, if later than the release (default: release).
 */
export interface ReleaseOutcome {
  sent: boolean;
  startedAtMs?: number;
}

/** A group's pacing state, plain data so an outbox can store it. */
export interface GroupState {
  groupId: string;
  lastSendStartMs: number | null;
}

export interface SchedulerOptions<T> {
  clock: Clock;
  /**
   * Called with each release; resolves when its sends are done (retries
   * included). While it runs, the group releases nothing more: one send in
   * flight per key (or per store, for a store-wide group).
   */
  onRelease: (release: Release<T>) => Promise<ReleaseOutcome> | ReleaseOutcome;
  /** The group of a key; default: the key itself (a per-key debounce). */
  groupOf?: (key: string) => string;
  /** A group's settings, fixed when the group is created; default {@link DEFAULT_DEBOUNCE}. */
  settings?: GroupSettings | ((groupId: string) => GroupSettings);
  /** A queued change was replaced by a newer one of the same key before it was sent. */
  onCoalesced?: (replaced: ScheduledChange<T>, by: ScheduledChange<T>) => void;
  /** onRelease threw or rejected. The release then counts as sent, so pacing holds. */
  onReleaseError?: (error: unknown, release: Release<T>) => void;
}

interface Group<T> {
  readonly id: string;
  readonly settings: Required<GroupSettings>;
  queue: ScheduledChange<T>[];
  /** Index in `queue` of each key's last change, when that change may still be coalesced. */
  readonly coalescable: Map<string, number>;
  lastSendStartMs: number | null;
  firstQueuedAtMs: number | null;
  lastChangeAtMs: number | null;
  inFlight: Promise<void> | null;
  immediate: boolean;
  timer: TimerHandle | null;
  timerDueMs: number | null;
}

function normalize(settings: GroupSettings, groupId: string): Required<GroupSettings> {
  const where = `settings of group "${groupId}"`;
  assertNonNegative(`${where}: intervalMs`, settings.intervalMs);
  const minGapMs = settings.minGapMs ?? 0;
  assertNonNegative(`${where}: minGapMs`, minGapMs);
  const maxWaitMs = settings.maxWaitMs ?? settings.intervalMs;
  assertNonNegative(`${where}: maxWaitMs`, maxWaitMs);
  if (typeof settings.leading !== 'boolean') {
    throw new TypeError(`${where}: leading must be a boolean, got ${String(settings.leading)}`);
  }
  return { leading: settings.leading, intervalMs: settings.intervalMs, minGapMs, maxWaitMs };
}

/**
 * The one scheduler behind every pacing style of upsync (shared/DESIGN.md,
 * "Scheduling"). It holds changes, coalesces them newest-wins per key (except
 * ordered ones), and releases each group's queue when its pacing allows. It does
 * no I/O: the dispatcher sends, the outbox keeps the changes durable.
 */
export class Scheduler<T> {
  readonly #clock: Clock;
  readonly #onRelease: SchedulerOptions<T>['onRelease'];
  readonly #groupOf: (key: string) => string;
  readonly #settingsOf: (groupId: string) => GroupSettings;
  readonly #onCoalesced: SchedulerOptions<T>['onCoalesced'];
  readonly #onReleaseError: (error: unknown, release: Release<T>) => void;
  readonly #groups = new Map<string, Group<T>>();
  /** While a flushAll() runs, every group is due at once. */
  #flushing = 0;
  #coalesced = 0;
  #closed = false;

  constructor(options: SchedulerOptions<T>) {
    if (typeof options?.onRelease !== 'function') {
      throw new TypeError('Scheduler needs an onRelease function');
    }
    if (typeof options.clock?.now !== 'function') throw new TypeError('Scheduler needs a clock');
    this.#clock = options.clock;
    this.#onRelease = options.onRelease;
    this.#groupOf = options.groupOf ?? ((key) => key);
    const settings = options.settings ?? DEFAULT_DEBOUNCE;
    if (typeof settings !== 'function') normalize(settings, '*');
    this.#settingsOf = typeof settings === 'function' ? settings : () => settings;
    this.#onCoalesced = options.onCoalesced;
    this.#onReleaseError =
      options.onReleaseError ??
      ((error) => console.error('upsync: a scheduler release failed', error));
  }

  /** Versions replaced by a newer one before they were sent. */
  get coalesced(): number {
    return this.#coalesced;
  }

  /** Changes waiting in some group's queue (the "buffered events" of a status panel). */
  get queued(): number {
    let count = 0;
    for (const group of this.#groups.values()) count += group.queue.length;
    return count;
  }

  /** Groups with a release in progress. */
  get inFlight(): number {
    let count = 0;
    for (const group of this.#groups.values()) if (group.inFlight) count++;
    return count;
  }

  /** Takes a change in. It is released at once or when its group's pacing allows. */
  push(key: string, value: T, options: ScheduleOptions = {}): void {
    if (this.#closed) throw new TypeError('Scheduler is closed');
    if (typeof key !== 'string') throw new TypeError(`key must be a string, got ${typeof key}`);
    const change: ScheduledChange<T> = {
      key,
      value,
      atMs: options.atMs ?? this.#clock.now(),
      ordered: options.ordered ?? false,
      immediate: options.immediate ?? false,
    };
    const group = this.#group(this.#groupOf(key));
    this.#enqueue(group, change);
    this.#arm(group);
  }

  /**
   * Removes and returns the newest queued change of `key` if it could have been
   * coalesced. A dispatcher whose send of the key waits in backoff uses it to
   * send the newer version when the retry comes, instead of the stale one.
   */
  takeQueued(key: string): ScheduledChange<T> | undefined {
    const group = this.#groups.get(this.#groupOf(key));
    const index = group?.coalescable.get(key);
    if (!group || index === undefined) return undefined;
    const [change] = group.queue.splice(index, 1);
    this.#reindex(group);
    if (group.queue.length === 0) this.#resetBuffer(group);
    this.#arm(group);
    return change;
  }

  /** When the group releases next: its due time, or null with nothing queued. */
  dueAtMs(groupId: string): number | null {
    const group = this.#groups.get(groupId);
    return group ? this.#dueAt(group) : null;
  }

  /** The pacing state of every group that still constrains a future send. */
  snapshot(): GroupState[] {
    const now = this.#clock.now();
    const states: GroupState[] = [];
    for (const group of this.#groups.values()) {
      if (group.lastSendStartMs === null) continue;
      if (this.#windowEnd(group) > now || group.queue.length > 0 || group.inFlight) {
        states.push({ groupId: group.id, lastSendStartMs: group.lastSendStartMs });
      }
    }
    return states;
  }

  /** Restores pacing saved by {@link snapshot} (call before pushing the reloaded changes). */
  restore(states: readonly GroupState[]): void {
    for (const state of states) {
      const group = this.#group(state.groupId);
      group.lastSendStartMs = state.lastSendStartMs;
      this.#arm(group);
    }
  }

  /**
   * Releases every queued change at once (a group with a send in progress goes
   * the moment it finishes) and resolves when nothing is queued or in flight.
   * Used on shutdown; the caller bounds the wait with its own timeout.
   */
  async flushAll(): Promise<void> {
    this.#flushing++;
    try {
      for (;;) {
        for (const group of this.#groups.values()) this.#arm(group);
        const inFlight = [...this.#groups.values()]
          .map((group) => group.inFlight)
          .filter((p): p is Promise<void> => p !== null);
        if (inFlight.length === 0) return;
        await Promise.all(inFlight);
      }
    } finally {
      this.#flushing--;
    }
  }

  /** Stops all timers; queued changes stay where the caller's outbox has them. */
  close(): void {
    this.#closed = true;
    for (const group of this.#groups.values()) this.#disarm(group);
    this.#groups.clear();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #group(groupId: string): Group<T> {
    let group = this.#groups.get(groupId);
    if (!group) {
      group = {
        id: groupId,
        settings: normalize(this.#settingsOf(groupId), groupId),
        queue: [],
        coalescable: new Map(),
        lastSendStartMs: null,
        firstQueuedAtMs: null,
        lastChangeAtMs: null,
        inFlight: null,
        immediate: false,
        timer: null,
        timerDueMs: null,
      };
      this.#groups.set(groupId, group);
    }
    return group;
  }

  #enqueue(group: Group<T>, change: ScheduledChange<T>): void {
    group.lastChangeAtMs = change.atMs;
    group.firstQueuedAtMs ??= change.atMs;
    if (change.immediate) group.immediate = true;
    // Only the key's last queued change may be replaced: replacing an earlier
    // one would put newer content before ordered writes that came after it.
    const index = change.ordered ? undefined : group.coalescable.get(change.key);
    if (index !== undefined) {
      const replaced = group.queue[index];
      group.queue[index] = change;
      this.#coalesced++;
      if (replaced) this.#onCoalesced?.(replaced, change);
      return;
    }
    group.queue.push(change);
    if (change.ordered) group.coalescable.delete(change.key);
    else group.coalescable.set(change.key, group.queue.length - 1);
  }

  #reindex(group: Group<T>): void {
    group.coalescable.clear();
    group.queue.forEach((change, index) => {
      if (change.ordered) group.coalescable.delete(change.key);
      else group.coalescable.set(change.key, index);
    });
  }

  #resetBuffer(group: Group<T>): void {
    group.firstQueuedAtMs = null;
    group.lastChangeAtMs = null;
    group.immediate = false;
  }

  /** When the group may start its next send, going by the last one's start. */
  #windowEnd(group: Group<T>): number {
    if (group.lastSendStartMs === null) return -Infinity;
    const { leading, intervalMs, minGapMs } = group.settings;
    return group.lastSendStartMs + (leading ? Math.max(intervalMs, minGapMs) : minGapMs);
  }

  #dueAt(group: Group<T>): number | null {
    if (group.queue.length === 0) return null;
    const now = this.#clock.now();
    if (this.#flushing > 0 || group.immediate) return now;
    const { leading, intervalMs, maxWaitMs } = group.settings;
    const gapEnd = this.#windowEnd(group);
    if (leading) return Math.max(now, gapEnd);
    const quietEnd = Math.min(
      (group.lastChangeAtMs ?? now) + intervalMs,
      (group.firstQueuedAtMs ?? now) + maxWaitMs,
    );
    return Math.max(now, quietEnd, gapEnd);
  }

  /** Releases the group now if due, else keeps one timer for its due time. */
  #arm(group: Group<T>): void {
    if (this.#closed || group.inFlight) return;
    const due = this.#dueAt(group);
    if (due === null) {
      this.#disarm(group);
      this.#prune(group);
      return;
    }
    const now = this.#clock.now();
    if (due <= now) {
      this.#disarm(group);
      this.#release(group);
      return;
    }
    if (group.timerDueMs !== due) this.#wakeAt(group, due);
  }

  /** Keeps one timer per group: at `atMs` the group is looked at again. */
  #wakeAt(group: Group<T>, atMs: number): void {
    this.#disarm(group);
    group.timerDueMs = atMs;
    group.timer = this.#clock.setTimeout(() => {
      group.timer = null;
      group.timerDueMs = null;
      this.#arm(group);
    }, atMs - this.#clock.now());
  }

  #disarm(group: Group<T>): void {
    if (group.timer !== null) this.#clock.clearTimeout(group.timer);
    group.timer = null;
    group.timerDueMs = null;
  }

  /** Forgets a group whose state no longer constrains anything, so memory stays bounded. */
  #prune(group: Group<T>): void {
    if (group.queue.length > 0 || group.inFlight) return;
    const windowEnd = this.#windowEnd(group);
    // Past its window the group is as good as new; until then, come back to forget it.
    if (windowEnd <= this.#clock.now()) this.#groups.delete(group.id);
    else this.#wakeAt(group, windowEnd);
  }

  #release(group: Group<T>): void {
    const release: Release<T> = {
      groupId: group.id,
      changes: group.queue,
      releasedAtMs: this.#clock.now(),
      immediate: group.immediate,
    };
    group.queue = [];
    group.coalescable.clear();
    this.#resetBuffer(group);
    const run = async (): Promise<void> => {
      // Yield first so `inFlight` is set before onRelease runs: a push made from
      // inside onRelease must queue, not start a second send of the group.
      await Promise.resolve();
      let outcome: ReleaseOutcome;
      try {
        outcome = await this.#onRelease(release);
      } catch (error) {
        this.#onReleaseError(error, release);
        outcome = { sent: true };
      }
      if (outcome.sent) {
        group.lastSendStartMs = Math.max(
          group.lastSendStartMs ?? -Infinity,
          outcome.startedAtMs ?? release.releasedAtMs,
        );
      }
    };
    group.inFlight = run().finally(() => {
      group.inFlight = null;
      this.#arm(group);
    });
  }
}
