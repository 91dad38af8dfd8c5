import type {
  Engine,
  EngineStatus,
  HostPacing,
  Outcome,
  Stats,
  StatusClass,
  TransportMonitor,
} from '@upsync/core';

/** Where the command is: the panel's headline. */
export type PanelPhase = 'starting' | 'sending' | 'watching' | 'stopping' | 'done';

export interface PanelError {
  readonly key: string;
  readonly cause: string;
  /** What became of it: `retrying` is a transient cause, the others are outcomes. */
  readonly state: 'failed' | 'dead-lettered' | 'pending' | 'retrying';
}

export interface PanelPacing {
  readonly host: string;
  readonly ratePerSec: number | null;
  readonly ceilingPerSec: number | null;
  readonly adaptive: boolean;
  readonly queued: number;
}

/**
 * Everything one frame shows, as plain data: `renderPanel` turns it into text,
 * and tests build it by hand.
 */
export interface PanelModel {
  readonly command: 'sync' | 'run';
  readonly phase: PanelPhase;
  /** Paused by the user (`p`). */
  readonly paused: boolean;
  /** The folder scan is still taking items up, so `total` may grow. */
  readonly scanning: boolean;
  readonly elapsedMs: number;
  /** Versions that have an outcome. */
  readonly done: number;
  /** Versions taken up (coalesced ones excluded). */
  readonly total: number;
  /** Null while the total is unknown or nothing has finished yet. */
  readonly etaMs: number | null;
  readonly itemsPerSec: number;
  readonly outcomes: Readonly<Record<Outcome, number>>;
  readonly deadLettered: number;
  readonly requests: {
    readonly total: number;
    readonly byStatus: Readonly<Record<StatusClass, number>>;
  };
  readonly retries: number;
  readonly backoffMs: number;
  readonly bytesSent: number;
  /** Rows still in the outbox; null until the first status read. */
  readonly pending: number | null;
  /** Versions waiting in backoff for their next attempt. */
  readonly retrying: number;
  readonly workers: { readonly inFlight: number; readonly limit: number; readonly max: number };
  /** The remote host's rate limiter; null when the transport reported nothing. */
  readonly pacing: PanelPacing | null;
  readonly breaker: {
    readonly state: 'closed' | 'open' | 'half-open';
    readonly retryInMs: number | null;
  };
  /** Newest last. */
  readonly errors: readonly PanelError[];
  /** `run` after its first pass: what the watcher brought since. */
  readonly watching: {
    readonly changes: number;
    readonly coalesced: number;
    readonly sent: number;
  } | null;
  /** What stopping is doing, and how to cut it short. */
  readonly stopping: string | null;
  /** Whether `p` and `q` work (stdin is a terminal). */
  readonly keys: boolean;
}

export interface PanelSources {
  readonly engine: Pick<Engine, 'on' | 'status'>;
  readonly stats: Pick<Stats, 'snapshot'>;
  readonly monitor: Pick<TransportMonitor, 'snapshot'>;
}

export interface PanelCollectorOptions {
  readonly command: 'sync' | 'run';
  /** `--concurrency`: the worker bar's size until the transport reports its own. */
  readonly concurrency: number;
  readonly keys: boolean;
  /** The clock the transport's `breakerRetryAtMs` is on; default Date.now. */
  readonly now?: () => number;
  /** Errors kept for the panel; default 4. */
  readonly maxErrors?: number;
}

/** The remote's messages name the request and key (`PUT of "k" in project p: ...`); the panel already shows the key. */
function shortCause(key: string, cause: string): string {
  const named = cause.indexOf(`"${key}"`);
  if (named < 0) return cause;
  const colon = cause.indexOf(': ', named);
  return colon < 0 ? cause : cause.slice(colon + 2);
}

const sentOf = (o: Readonly<Record<Outcome, number>>): number => o.created + o.updated + o.deleted;

/**
 * Gathers what the panel shows without costing the sync anything: the event
 * handlers only bump counters and keep the last few errors; the rest is read
 * from snapshots (Stats, the transport monitor, the engine's status) when a
 * frame is built, at most twice a second.
 */
export class PanelCollector {
  readonly #sources: PanelSources;
  readonly #options: PanelCollectorOptions;
  readonly #now: () => number;
  readonly #maxErrors: number;
  readonly #off: Array<() => void>;
  readonly #errors: PanelError[] = [];
  #phase: PanelPhase = 'starting';
  #scanning = false;
  #paused = false;
  #status: EngineStatus | null = null;
  #refreshing: Promise<void> | null = null;
  #watch: { changes: number; coalesced: number; sent: number } | null = null;
  #stopping: string | null = null;

  constructor(sources: PanelSources, options: PanelCollectorOptions) {
    this.#sources = sources;
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#maxErrors = options.maxErrors ?? 4;
    const { engine } = sources;
    this.#off = [
      engine.on('outcome', (event) => {
        if (event.outcome !== 'errored' && event.outcome !== 'timedOut') {
          this.#arrived(event.key);
          return;
        }
        const state =
          event.outcome === 'timedOut'
            ? 'pending'
            : event.deadLettered
              ? 'dead-lettered'
              : 'failed';
        this.#error({ key: event.key, cause: event.error ?? 'error', state });
      }),
      // A local refusal (the host is paused) is no news from the remote: the 503 that paused it was.
      engine.on('retrying', (event) =>
        event.resend
          ? this.#error({ key: event.key, cause: event.error, state: 'retrying' })
          : undefined,
      ),
      engine.on('paused', (info) => {
        if (info.reason === 'user') this.#paused = true;
      }),
      engine.on('resumed', () => {
        this.#paused = false;
      }),
    ];
  }

  /** Paused by the user (the `p` key), as the engine's events said. */
  get paused(): boolean {
    return this.#paused;
  }

  get phase(): PanelPhase {
    return this.#phase;
  }

  setPhase(phase: PanelPhase): void {
    this.#phase = phase;
  }

  /** The folder scan started (true) or ended (false): until it ends, the total grows. */
  setScanning(scanning: boolean): void {
    this.#scanning = scanning;
  }

  /** `run`: the first pass is done; what the watcher brings is counted from here. */
  startWatching(): void {
    const snapshot = this.#sources.stats.snapshot();
    this.#watch = { changes: 0, coalesced: snapshot.coalesced, sent: sentOf(snapshot) };
    this.#phase = 'watching';
  }

  /** One change reported by the watcher. */
  changeReceived(): void {
    if (this.#watch) this.#watch.changes++;
  }

  /** Stopping: `hint` says what it waits for and how to cut it short. */
  stopping(hint: string): void {
    this.#phase = 'stopping';
    this.#stopping = hint;
  }

  /** Reads the engine's status (the outbox's counts); never two reads at once. */
  refresh(): Promise<void> {
    this.#refreshing ??= this.#sources.engine
      .status()
      .then(
        (status) => {
          this.#status = status;
        },
        // The store closes at the end; the last status read stays.
        () => {},
      )
      .finally(() => {
        this.#refreshing = null;
      });
    return this.#refreshing;
  }

  model(): PanelModel {
    const snapshot = this.#sources.stats.snapshot();
    const host: HostPacing | undefined = this.#sources.monitor.snapshot()[0];
    const status = this.#status;
    const done = snapshot.attempted - snapshot.inProgress;
    const total = snapshot.attempted;
    const left = total - done;
    const etaMs =
      this.#scanning || this.#phase === 'watching'
        ? null
        : left === 0
          ? 0
          : snapshot.itemsPerSec > 0
            ? (left / snapshot.itemsPerSec) * 1000
            : null;
    const concurrency = this.#options.concurrency;
    const workers =
      host && host.concurrencyLimit > 0
        ? {
            inFlight: host.inFlight,
            limit: host.concurrencyLimit,
            max: host.concurrencyMax || concurrency,
          }
        : { inFlight: status?.inFlight ?? 0, limit: concurrency, max: concurrency };
    const pacing: PanelPacing | null =
      host && (host.ratePerSec !== null || host.ceilingPerSec !== null || host.queued > 0)
        ? {
            host: host.host,
            ratePerSec: host.ratePerSec,
            ceilingPerSec: host.ceilingPerSec,
            adaptive: host.adaptive,
            queued: host.queued,
          }
        : null;
    const breakerState = host?.breaker ?? status?.breaker ?? 'closed';
    const retryAtMs = host?.breakerRetryAtMs ?? null;
    const watch = this.#watch;
    return {
      command: this.#options.command,
      phase: this.#phase,
      paused: this.#paused,
      scanning: this.#scanning,
      elapsedMs: snapshot.elapsedMs,
      done,
      total,
      etaMs,
      itemsPerSec: snapshot.itemsPerSec,
      outcomes: {
        created: snapshot.created,
        updated: snapshot.updated,
        deleted: snapshot.deleted,
        skipped: snapshot.skipped,
        errored: snapshot.errored,
        timedOut: snapshot.timedOut,
      },
      deadLettered: snapshot.deadLettered,
      requests: { total: snapshot.requests.total, byStatus: { ...snapshot.requests.byStatus } },
      retries: snapshot.retries,
      backoffMs: snapshot.backoffMs,
      bytesSent: snapshot.bytesSent,
      pending: status?.pending ?? null,
      retrying: status?.retrying ?? 0,
      workers,
      pacing,
      breaker: {
        state: breakerState,
        retryInMs:
          breakerState === 'open' && retryAtMs !== null
            ? Math.max(0, retryAtMs - this.#now())
            : null,
      },
      errors: [...this.#errors],
      watching: watch
        ? {
            changes: watch.changes,
            coalesced: snapshot.coalesced - watch.coalesced,
            sent: sentOf(snapshot) - watch.sent,
          }
        : null,
      stopping: this.#stopping,
      keys: this.#options.keys,
    };
  }

  /** Stops listening to the engine. */
  close(): void {
    for (const off of this.#off) off();
  }

  /** A retried key that got through is no error any more. */
  #arrived(key: string): void {
    for (let i = this.#errors.length - 1; i >= 0; i--) {
      if (this.#errors[i]?.key === key) this.#errors.splice(i, 1);
    }
  }

  #error(error: PanelError): void {
    this.#arrived(error.key);
    this.#errors.push({ ...error, cause: shortCause(error.key, error.cause) });
    if (this.#errors.length > this.#maxErrors) this.#errors.shift();
  }
}
