import { sleepOn, type Clock, type TimerHandle } from './clock.ts';

interface Timer {
  readonly id: number;
  readonly dueMs: number;
  readonly callback: () => void;
}

export interface ManualClockOptions {
  /** The starting time in ms; default 0. */
  startMs?: number;
}

type ImmediateFn = (callback: () => void) => void;

/**
 * Yields one macrotask, so every promise callback queued so far (and those they
 * queue in turn) runs before we go on. Works in Node and in browsers.
 */
function nextMacrotask(): Promise<void> {
  const immediate = (globalThis as { setImmediate?: ImmediateFn }).setImmediate;
  if (immediate) return new Promise((resolve) => immediate(resolve));
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(undefined);
  });
}

/**
 * A clock that moves only when told to. `advance(ms)` fires due timers in time
 * order (ties in the order they were set), and lets promise callbacks run between
 * them, so code that awaits between timers behaves as it would in real time.
 */
export class ManualClock implements Clock {
  #nowMs: number;
  #nextId = 1;
  readonly #timers = new Map<number, Timer>();

  constructor(options: ManualClockOptions = {}) {
    const startMs = options.startMs ?? 0;
    if (!Number.isFinite(startMs)) throw new TypeError(`startMs must be finite, got ${startMs}`);
    this.#nowMs = startMs;
  }

  now(): number {
    return this.#nowMs;
  }

  setTimeout(callback: () => void, delayMs: number): TimerHandle {
    const id = this.#nextId++;
    const delay = Number.isFinite(delayMs) ? Math.max(0, delayMs) : 0;
    this.#timers.set(id, { id, dueMs: this.#nowMs + delay, callback });
    return id;
  }

  clearTimeout(handle: TimerHandle): void {
    if (typeof handle === 'number') this.#timers.delete(handle);
  }

  sleep(delayMs: number, signal?: AbortSignal): Promise<void> {
    return sleepOn(this, delayMs, signal);
  }

  /** How many timers are waiting. */
  get pendingTimers(): number {
    return this.#timers.size;
  }

  /** The due time of the earliest timer, or undefined when none waits. */
  nextDueMs(): number | undefined {
    return this.#earliest()?.dueMs;
  }

  /** Lets queued promise callbacks run without moving time. */
  async settle(): Promise<void> {
    // A few macrotask turns: enough for chains of awaits that hop through
    // other resolved promises, without depending on their depth.
    for (let i = 0; i < 3; i++) await nextMacrotask();
  }

  /** Moves time forward by `ms`, firing every timer due by then in time order. */
  async advance(ms: number): Promise<void> {
    if (!Number.isFinite(ms) || ms < 0) {
      throw new TypeError(`advance(ms) needs a finite ms >= 0, got ${ms}`);
    }
    await this.advanceTo(this.#nowMs + ms);
  }

  /** Moves time forward to `targetMs` (never backwards). */
  async advanceTo(targetMs: number): Promise<void> {
    if (!Number.isFinite(targetMs))
      throw new TypeError(`advanceTo needs a finite time, got ${targetMs}`);
    await this.settle();
    for (;;) {
      const timer = this.#earliest();
      if (!timer || timer.dueMs > targetMs) break;
      this.#timers.delete(timer.id);
      this.#nowMs = Math.max(this.#nowMs, timer.dueMs);
      timer.callback();
      await this.settle();
    }
    this.#nowMs = Math.max(this.#nowMs, targetMs);
    await this.settle();
  }

  /**
   * Fires timers until none is left, up to `maxTimers` (a guard against code
   * that re-arms a timer forever). Returns how many fired.
   */
  async runAll(maxTimers = 10_000): Promise<number> {
    let fired = 0;
    await this.settle();
    for (;;) {
      const timer = this.#earliest();
      if (!timer) return fired;
      if (fired >= maxTimers) {
        throw new Error(`runAll: more than ${maxTimers} timers fired; a timer keeps re-arming`);
      }
      await this.advanceTo(timer.dueMs);
      fired++;
    }
  }

  #earliest(): Timer | undefined {
    let best: Timer | undefined;
    for (const timer of this.#timers.values()) {
      if (!best || timer.dueMs < best.dueMs || (timer.dueMs === best.dueMs && timer.id < best.id)) {
        best = timer;
      }
    }
    return best;
  }
}
