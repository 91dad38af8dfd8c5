import { ClosedError } from '../errors/upsync-error.ts';
import { Emitter, type Listener } from '../events/emitter.ts';
import { Semaphore } from '../limits/semaphore.ts';
import { isLeased, randomIdempotencyKey } from '../outbox/outbox-checks.ts';
import type { OutboxLock, OutboxScope, OutboxStore, PendingRow } from '../outbox/outbox-store.ts';
import { systemRandom, type Random } from '../random/random.ts';
import type { Remote } from '../remote/remote.ts';
import { exponentialBackoff, type Backoff } from '../retry/backoff.ts';
import { DEFAULT_MAX_RETRY_AFTER_MS } from '../retry/retry-after.ts';
import { DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_RETRY_TIME_MS } from '../retry/retry-budget.ts';
import {
  DEFAULT_BUFFER,
  DEFAULT_DEBOUNCE,
  Scheduler,
  type GroupSettings,
} from '../scheduling/scheduler.ts';
import { Stats, type StatsSnapshot } from '../stats/stats.ts';
import { systemClock, type Clock, type TimerHandle } from '../time/clock.ts';
import { assertInteger, assertNonNegative, assertPositive } from '../validate.ts';
import { Decider, type Listing } from './decider.ts';
import { Dispatcher } from './dispatcher.ts';
import type {
  EngineEvents,
  EngineStatus,
  FileAccess,
  PauseInfo,
  PushBody,
  PushOptions,
  PushReceipt,
} from './engine-types.ts';
import { Intake, type ChangeRef } from './intake.ts';
import { loadListing, type ListingResult } from './load-listing.ts';
import { PauseGate } from './pause-gate.ts';
import { Recorder, describeError, type ReportedError } from './recorder.ts';
import { VersionLedger } from './version-ledger.ts';
import { describeValue } from './describe-value.ts';

export interface EngineLogger {
  warn(message: string, details?: unknown): void;
}

export interface EngineOptions {
  store: OutboxStore;
  scope: OutboxScope;
  /**
   * Where puts, deletes and HEADs go, with ONE attempt per call: the engine
   * retries them itself (backoff, per-item budget saved in the outbox), so a
   * transport retry below would multiply attempts. Build its transport with
   * `composeTransport(base, { retry: false, ... })`.
   */
  remote: Remote;
  /**
   * Where the listing comes from; default `remote`. Give the same stack with
   * the retry middleware on top (`applyMiddleware(transport, [retryMiddleware()])`):
   * each of the listing's 3 attempts then goes through the retry middleware.
   */
  listingRemote?: Pick<Remote, 'list'>;
  clock?: Clock;
  random?: Random;
  /** The per-key debounce; default {@link DEFAULT_DEBOUNCE} (10 s, leading). */
  settings?: GroupSettings;
  /** The store-wide buffer used by the batch lane (or by every key with `storeWide`); default {@link DEFAULT_BUFFER}. */
  buffer?: GroupSettings;
  /** Every key in one store-wide group (the backup style). */
  storeWide?: boolean;
  /** Sends in flight at once; default 16. */
  concurrency?: number;
  /** Attempts per version, the first included (`--attempts`); default 5. */
  attempts?: number;
  /** Retry time per version (`--retry-time`); default 120_000. */
  retryTimeMs?: number;
  /** Default exponentialBackoff with full jitter on `random`. */
  backoff?: Backoff;
  /** The longest single wait, Retry-After included; default 300_000. */
  maxDelayMs?: number;
  /** How long a claim's lease lasts; default 60_000. */
  leaseMs?: number;
  /** The lease and lock owner; default a random id. */
  owner?: string;
  /** Listing attempts and the wait between them; default 3 and 1000. */
  listingAttempts?: number;
  listingDelayMs?: number;
  /**
   * Every this many ms (on `clock`), versions this command timed out that are
   * still pending, due, not in flight and not queued are handed to the
   * dispatcher again, each with a fresh retry budget and its Idempotency-Key
   * (docs/design-notes.md "Failures"). Not while paused. Default 0: off (`sync`
   * ends instead); `upsync run` uses {@link DEFAULT_RESWEEP_MS}.
   */
  resweepMs?: number;
  stats?: Stats;
  logger?: EngineLogger;
  /** Reads file references; required to send versions pushed as files. */
  files?: FileAccess;
}

/** The final report: Stats' snapshot, whether the accounting checked out, and what did not arrive. */
export interface EngineReport extends StatsSnapshot {
  readonly checked: boolean;
  readonly invariantError: string | null;
  readonly errors: readonly ReportedError[];
  readonly paused: PauseInfo | null;
  readonly listing: 'loaded' | 'failed' | 'none';
}

const STORE_GROUP = '\u0000store';

/** The resweep period `upsync run` uses (30 s). */
export const DEFAULT_RESWEEP_MS = 30_000;

/**
 * The sync engine: changes flow one way through intake (outbox, scheduler),
 * the dispatcher (claim, decide, send, retry) and the recorder (ack, stats,
 * events). This class only builds and wires those stages and owns their
 * lifecycle: start (lock, reload), flush, pause, resume, shutdown.
 */
export class Engine implements AsyncDisposable {
  readonly stats: Stats;
  readonly #store: OutboxStore;
  readonly #scope: OutboxScope;
  readonly #clock: Clock;
  readonly #owner: string;
  readonly #events: Emitter<EngineEvents>;
  readonly #ledger: VersionLedger;
  readonly #gate: PauseGate;
  readonly #scheduler: Scheduler<ChangeRef>;
  readonly #intake: Intake;
  readonly #recorder: Recorder;
  readonly #dispatcher: Dispatcher;
  readonly #semaphore: Semaphore;
  readonly #abort = new AbortController();
  readonly #groups = new Map<string, string>();
  readonly #storeWide: boolean;
  readonly #listingRemote: Pick<Remote, 'list'>;
  readonly #listingAttempts: number;
  readonly #listingDelayMs: number;
  readonly #logger: EngineLogger;
  #listing: Listing | null = null;
  #listingState: 'loaded' | 'failed' | 'none' = 'none';
  #lock: OutboxLock | null = null;
  readonly #resweepMs: number;
  #resweepTimer: TimerHandle | null = null;
  #resweeping: Promise<void> = Promise.resolve();
  #resweepAgain = false;
  #resweepOff = false;
  #started = false;
  #stopped = false;

  constructor(options: EngineOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(`Engine options must be an object, got ${describeValue(options)}`);
    }
    const { store, scope, remote } = options;
    if (typeof store?.append !== 'function') {
      throw new TypeError(`store must be an OutboxStore, got ${describeValue(store)}`);
    }
    if (typeof scope !== 'object' || scope === null) {
      throw new TypeError(
        `scope must be { remote, project, principal }, got ${describeValue(scope)}`,
      );
    }
    if (typeof remote?.put !== 'function' || typeof remote.delete !== 'function') {
      throw new TypeError(`remote must be a Remote, got ${describeValue(remote)}`);
    }
    const concurrency = options.concurrency ?? 16;
    assertInteger('concurrency', concurrency, 1);
    const attempts = options.attempts ?? DEFAULT_MAX_ATTEMPTS;
    if (attempts !== Infinity) assertInteger('attempts', attempts, 1);
    const retryTimeMs = options.retryTimeMs ?? DEFAULT_MAX_RETRY_TIME_MS;
    if (retryTimeMs !== Infinity) assertNonNegative('retryTimeMs', retryTimeMs);
    const maxDelayMs = options.maxDelayMs ?? DEFAULT_MAX_RETRY_AFTER_MS;
    assertNonNegative('maxDelayMs', maxDelayMs);
    const leaseMs = options.leaseMs ?? 60_000;
    assertPositive('leaseMs', leaseMs);
    this.#listingAttempts = options.listingAttempts ?? 3;
    assertInteger('listingAttempts', this.#listingAttempts, 1);
    this.#resweepMs = options.resweepMs ?? 0;
    assertNonNegative('resweepMs', this.#resweepMs);
    this.#listingDelayMs = options.listingDelayMs ?? 1000;
    assertNonNegative('listingDelayMs', this.#listingDelayMs);
    const clock = options.clock ?? systemClock;
    if (typeof clock.now !== 'function')
      throw new TypeError(`clock must be a Clock, got ${describeValue(clock)}`);
    const random = options.random ?? systemRandom;
    const debounce = options.settings ?? DEFAULT_DEBOUNCE;
    const buffer = options.buffer ?? DEFAULT_BUFFER;

    this.#store = store;
    this.#scope = scope;
    this.#clock = clock;
    this.#owner = options.owner ?? `engine-${randomIdempotencyKey().slice(0, 12)}`;
    this.#storeWide = options.storeWide ?? false;
    this.#listingRemote = options.listingRemote ?? remote;
    this.#logger = options.logger ?? { warn: (message, details) => console.warn(message, details) };
    this.stats = options.stats ?? new Stats({ clock });
    this.#events = new Emitter<EngineEvents>({
      onListenerError: (error, event) => this.#logger.warn(`a listener of "${event}" threw`, error),
    });
    this.#ledger = new VersionLedger({ stats: this.stats });
    this.#gate = new PauseGate({
      onChange: (paused, was) => {
        if (paused) this.#events.emit('paused', paused);
        else if (was) this.#events.emit('resumed', { reason: was.reason });
      },
    });
    this.#semaphore = new Semaphore({ limit: concurrency });
    this.#recorder = new Recorder({
      store,
      scope,
      ledger: this.#ledger,
      events: this.#events,
      clock,
    });
    this.#scheduler = new Scheduler<ChangeRef>({
      clock,
      groupOf: (key) => this.#groups.get(key) ?? key,
      settings: (groupId) => (groupId === STORE_GROUP ? buffer : debounce),
      onRelease: (release) => this.#dispatcher.dispatch(release),
      onCoalesced: (replaced, by) => this.#intake.coalesced(replaced, by),
      onReleaseError: (error) => this.#logger.warn('upsync: a send failed unexpectedly', error),
    });
    this.#dispatcher = new Dispatcher({
      store,
      scope,
      clock,
      owner: this.#owner,
      leaseMs,
      remote,
      decider: new Decider({ store, scope, remote }),
      recorder: this.#recorder,
      ledger: this.#ledger,
      events: this.#events,
      gate: this.#gate,
      stats: this.stats,
      semaphore: this.#semaphore,
      backoff: options.backoff ?? exponentialBackoff({ random }),
      maxAttempts: attempts,
      maxTimeMs: retryTimeMs,
      maxDelayMs,
      files: options.files,
      listing: () => this.#listing,
      takeNewer: async (key) => {
        const taken = this.#scheduler.takeQueued(key);
        if (!taken) return undefined;
        this.#intake.supersede(key, taken.value.seq);
        await this.#intake.idle();
        return taken.value;
      },
      supersede: async (key, seq) => {
        this.#intake.supersede(key, seq);
        await this.#intake.idle();
      },
      beforeClaim: () => this.#intake.idle(),
      isQueued: (key) => this.#scheduler.dueAtMs(this.#groups.get(key) ?? key) !== null,
      signal: this.#abort.signal,
      onRecovered: () => this.#resweepSoon(),
    });
    this.#intake = new Intake({
      store,
      scope,
      ledger: this.#ledger,
      events: this.#events,
      schedule: (key, change, scheduleOptions) => {
        if (this.#started && !this.#stopped) this.#scheduler.push(key, change, scheduleOptions);
      },
      isActive: (key) =>
        this.#dispatcher.isBusy(key) ||
        this.#scheduler.dueAtMs(this.#groups.get(key) ?? key) !== null,
      held: this.#dispatcher.held,
      onError: (error) => this.#logger.warn('upsync: an outbox write failed', error),
    });
  }

  /** The lease and lock owner. */
  get owner(): string {
    return this.#owner;
  }

  on<K extends keyof EngineEvents>(event: K, listener: Listener<EngineEvents[K]>): () => void {
    return this.#events.on(event, listener);
  }

  /**
   * Takes the outbox's sender lock and schedules every pending row again (a
   * restart or a crash: same seqs, same idempotency keys), with the pacing the
   * last run saved. Rows a dead process leased are taken once their lease expires.
   */
  async start(): Promise<void> {
    if (this.#started) throw new TypeError('the engine is already started');
    if (this.#stopped) throw new ClosedError('the engine was shut down');
    this.#lock = await this.#store.lock(this.#owner);
    this.#started = true;
    this.#scheduler.restore(await this.#store.loadPacing(this.#scope));
    for await (const row of this.#store.pendingEntries(this.#scope)) {
      this.#groupFor(row.key, row.lane);
      this.#ledger.begin(row.key, row.seq, row.ordered);
      this.#scheduler.push(
        row.key,
        { seq: row.seq, knownNew: false },
        { ordered: row.ordered, immediate: row.lane === 'immediate' },
      );
    }
    this.#armResweep();
  }

  /**
   * Takes a version in: it is in the outbox when this resolves. Before
   * start() (or from a process without the lock) it is only stored, for the
   * sender to pick up.
   */
  push(key: string, body: PushBody, options: PushOptions = {}): Promise<PushReceipt> {
    if (this.#stopped) return Promise.reject(new ClosedError('the engine was shut down'));
    if (typeof key === 'string') this.#groupFor(key, options.lane ?? 'normal');
    return this.#intake.push(key, body, options);
  }

  /**
   * Loads the remote's listing for this command (3 attempts 1 s apart), which
   * the decider then uses for every item. Without it, or when it fails, each
   * item is checked against the synced table and a HEAD. An auth failure (or a
   * missing project) pauses the engine and rejects: the command must end.
   */
  async loadListing(
    options: { signal?: AbortSignal; prefix?: string } = {},
  ): Promise<ListingResult> {
    const signal = options.signal
      ? AbortSignal.any([options.signal, this.#abort.signal])
      : this.#abort.signal;
    try {
      const result = await loadListing(this.#listingRemote, {
        clock: this.#clock,
        attempts: this.#listingAttempts,
        delayMs: this.#listingDelayMs,
        signal,
        ...(options.prefix === undefined ? {} : { prefix: options.prefix }),
      });
      this.#listing = result.listing;
      this.#listingState = result.listing ? 'loaded' : 'failed';
      this.#events.emit(
        'listing',
        result.listing
          ? { state: 'loaded', items: result.listing.size }
          : { state: 'failed', error: describeError(result.error) },
      );
      return result;
    } catch (error) {
      const status = (error as { status?: unknown }).status;
      if (typeof status === 'number' && [401, 403, 404].includes(status)) {
        this.#gate.pause({
          reason: status === 404 ? 'project' : 'auth',
          status,
          message:
            status === 404
              ? `the remote has no such project (HTTP 404); nothing was sent.`
              : `the remote refused the token (HTTP ${status}); nothing was sent.`,
        });
      }
      throw error;
    }
  }

  /**
   * Sends every queued change now and resolves when nothing is queued or in
   * flight, or as soon as the engine is paused (then the changes stay pending).
   */
  async flush(): Promise<void> {
    this.#checkStarted();
    if (!this.#gate.paused) {
      const paused = this.#whenPaused();
      try {
        await Promise.race([this.#scheduler.flushAll(), paused.promise]);
      } finally {
        paused.off();
      }
    }
    await this.#intake.idle();
  }

  /** Stops sending (the changes stay pending and pushes are still taken in). */
  pause(): void {
    this.#gate.pause({ reason: 'user', status: null, message: 'paused' });
  }

  /** Sends again; also after a pause for auth once the token is fixed. */
  resume(): void {
    this.#gate.resume();
  }

  /**
   * Sends every queued change at once, waits for sends in flight up to
   * `timeoutMs` (default 30 s), then stops: whatever did not arrive counts as
   * timed out and stays in the outbox for the next run. Saves the pacing and
   * releases the lock. Resolves with the final report.
   */
  async shutdown(options: { timeoutMs?: number } = {}): Promise<EngineReport> {
    const timeoutMs = options.timeoutMs ?? 30_000;
    assertNonNegative('timeoutMs', timeoutMs);
    if (this.#stopped) return this.report();
    if (!this.#started) {
      this.#stopped = true;
      this.#scheduler.close();
      return this.report();
    }
    this.#resweepOff = true;
    if (this.#resweepTimer) this.#clock.clearTimeout(this.#resweepTimer);
    await this.#resweeping;
    const timer = new AbortController();
    const paused = this.#whenPaused();
    if (!this.#gate.paused && timeoutMs > 0) {
      await Promise.race([
        this.#scheduler.flushAll(),
        paused.promise,
        this.#clock.sleep(timeoutMs, timer.signal).catch(() => undefined),
      ]);
    }
    paused.off();
    timer.abort();
    this.#stopped = true;
    this.#abort.abort(new ClosedError('the engine shut down before this version was sent'));
    // Everything still queued is released into the aborted dispatcher, which
    // counts it as timed out without sending.
    await this.#scheduler.flushAll();
    await this.#intake.idle();
    const left = this.#ledger.openVersions();
    for (const version of left) {
      this.#recorder.timedOut(version, new Error('not sent before shutdown'));
    }
    try {
      await this.#store.savePacing(this.#scope, this.#scheduler.snapshot());
    } finally {
      this.#scheduler.close();
      await this.#lock?.release();
      this.#lock = null;
    }
    this.#events.emit('stopped', { timedOut: this.stats.count('timedOut') });
    return this.report();
  }

  /** Shuts down at once (no wait for sends in flight). */
  async close(): Promise<void> {
    await this.shutdown({ timeoutMs: 0 });
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async status(): Promise<EngineStatus> {
    const counts = await this.#store.counts(this.#scope);
    return {
      enabled: this.#started && !this.#stopped && !this.#gate.paused,
      paused: this.#gate.paused,
      pending: counts.pending,
      inFlight: this.#dispatcher.inFlight,
      buffered: this.#scheduler.queued,
      deadLetters: counts.deadLetters,
      droppedDeadLetters: counts.droppedDeadLetters,
      lastSyncAtMs: this.#recorder.lastSyncAtMs,
      consecutiveFailures: this.#recorder.consecutiveFailures,
      breaker: this.#dispatcher.breaker,
      retrying: this.#dispatcher.retrying,
    };
  }

  /** The report: consistent with Stats, checked (settled once shut down). */
  report(): EngineReport {
    const snapshot = this.stats.snapshot();
    let invariantError: string | null = null;
    try {
      Stats.checkSnapshot(snapshot, { settled: this.#stopped });
    } catch (error) {
      invariantError = describeError(error);
    }
    return {
      ...snapshot,
      checked: invariantError === null,
      invariantError,
      errors: [...this.#recorder.errors],
      paused: this.#gate.paused,
      listing: this.#listingState,
    };
  }

  #armResweep(delayMs = this.#resweepMs): void {
    if (this.#resweepMs === 0 || this.#resweepOff) return;
    this.#resweepTimer = this.#clock.setTimeout(() => {
      this.#resweepTimer = null;
      this.#resweepAgain = false;
      this.#resweeping = this.#resweep()
        .catch((error: unknown) => this.#logger.warn('upsync: a resweep failed', error))
        .finally(() => this.#armResweep(this.#resweepAgain ? 0 : this.#resweepMs));
    }, delayMs);
  }

  /** The remote answered after the breaker refused: what timed out goes now, not a period later. */
  #resweepSoon(): void {
    if (this.#resweepTimer === null) {
      this.#resweepAgain = true;
      return;
    }
    this.#clock.clearTimeout(this.#resweepTimer);
    this.#armResweep(0);
  }

  /** Hands the timed-out versions that stayed pending to the dispatcher again (see `resweepMs`). */
  async #resweep(): Promise<void> {
    if (this.#gate.paused) return;
    // While the breaker refuses, one key goes (a probe); its arrival sweeps the rest at once.
    const probeOnly = this.#dispatcher.breaker === 'open';
    await this.#intake.idle();
    const now = this.#clock.now();
    const byKey = new Map<string, PendingRow[]>();
    for await (const row of this.#store.pendingEntries(this.#scope)) {
      const rows = byKey.get(row.key);
      if (rows) rows.push(row);
      else byKey.set(row.key, [row]);
    }
    const idle = (key: string): boolean =>
      !this.#dispatcher.isBusy(key) &&
      this.#scheduler.dueAtMs(this.#groups.get(key) ?? key) === null;
    for (const [key, rows] of byKey) {
      rows.sort((a, b) => a.seq - b.seq);
      const head = rows[0];
      if (!head || head.nextAttemptAtMs > now || !idle(key)) continue;
      if (rows.some((row) => this.#dispatcher.held.has(row.seq) || isLeased(row, now))) continue;
      if (!this.#ledger.timedOut(key, head.seq)) continue;
      // A new command-level attempt: a fresh retry budget (the rows behind were never sent).
      await this.#store.release(this.#scope, key, head.seq, {
        owner: this.#owner,
        nextAttemptAtMs: head.nextAttemptAtMs,
        attempts: 0,
        budgetStartedAtMs: null,
      });
      if (this.#stopped || this.#gate.paused) return;
      if (!idle(key)) continue;
      let pushed = false;
      for (const row of rows) {
        if (!this.#recorder.reopen(row)) continue;
        pushed = true;
        this.#scheduler.push(
          key,
          { seq: row.seq, knownNew: false },
          { ordered: row.ordered, immediate: row.lane === 'immediate' },
        );
      }
      if (pushed && probeOnly) return;
    }
  }

  #groupFor(key: string, lane: string): void {
    if (this.#groups.has(key)) return;
    // The immediate lane never waits for a store-wide buffer: its key paces alone.
    const storeWide = lane === 'batch' || (this.#storeWide && lane !== 'immediate');
    this.#groups.set(key, storeWide ? STORE_GROUP : key);
  }

  /** Resolves when the engine pauses; `off()` drops the listener when the caller is done waiting. */
  #whenPaused(): { promise: Promise<void>; off: () => void } {
    let off = (): void => {};
    const promise = new Promise<void>((resolve) => {
      off = this.#events.on('paused', () => resolve());
    });
    return { promise, off };
  }

  #checkStarted(): void {
    if (!this.#started) throw new TypeError('call start() first');
    if (this.#stopped) throw new ClosedError('the engine was shut down');
  }
}
