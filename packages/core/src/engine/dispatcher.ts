import type { Emitter } from '../events/emitter.ts';
import { CircuitOpenError, HttpError, RetryBudgetError } from '../errors/upsync-error.ts';
import type { Semaphore } from '../limits/semaphore.ts';
import { isLeased } from '../outbox/outbox-checks.ts';
import type { OutboxScope, OutboxStore, PendingRow } from '../outbox/outbox-store.ts';
import type { Remote } from '../remote/remote.ts';
import type { Backoff } from '../retry/backoff.ts';
import { classifyError } from '../retry/classify.ts';
import { RetryBudget } from '../retry/retry-budget.ts';
import type { Release, ReleaseOutcome } from '../scheduling/scheduler.ts';
import type { Stats } from '../stats/stats.ts';
import type { Clock } from '../time/clock.ts';
import type { Decider, Listing } from './decider.ts';
import type { EngineEvents, FileAccess, FileRef } from './engine-types.ts';
import type { ChangeRef } from './intake.ts';
import type { PauseGate } from './pause-gate.ts';
import { describeError, type Recorder, type SendResult } from './recorder.ts';
import { versionBody } from './version-body.ts';
import type { VersionLedger } from './version-ledger.ts';
import { describeValue } from './describe-value.ts';

export interface DispatcherOptions {
  store: OutboxStore;
  scope: OutboxScope;
  clock: Clock;
  /** The lease owner (this process or tab). */
  owner: string;
  leaseMs: number;
  /** Puts and deletes get one attempt per call here: the retry schedule is this class's. */
  remote: Pick<Remote, 'put' | 'delete'>;
  decider: Decider;
  recorder: Recorder;
  ledger: VersionLedger;
  events: Emitter<EngineEvents>;
  gate: PauseGate;
  stats: Stats;
  /** Bounds sends in flight; the immediate lane goes around it, ahead of everything. */
  semaphore: Semaphore;
  backoff: Backoff;
  maxAttempts: number;
  maxTimeMs: number;
  /** The longest single wait (Retry-After included). */
  maxDelayMs: number;
  files?: FileAccess | undefined;
  /** The listing loaded for this command, if any. */
  listing: () => Listing | null;
  /** A newer queued change of the key, taken from the scheduler with its older rows superseded. */
  takeNewer: (key: string) => Promise<ChangeRef | undefined>;
  /** A version appended here (a file changed while sent) replaces `seq`'s older rows. */
  supersede: (key: string, seq: number) => Promise<void>;
  /** Lets pending outbox writes (supersedes) land before a claim. */
  beforeClaim: () => Promise<void>;
  /** Whether the scheduler still holds a change of the key. */
  isQueued: (key: string) => boolean;
  /** Aborts on shutdown. */
  signal: AbortSignal;
}

interface KeyRun {
  maxSeq: number;
  readonly knownNew: Map<number, boolean>;
  readonly immediate: boolean;
  startedAtMs: number | undefined;
}

type Claimed = PendingRow | 'none' | 'blocked';

const noop = (): void => {};

function isFileChanged(error: unknown, row: PendingRow): boolean {
  if (row.body?.type !== 'file') return false;
  if (error instanceof HttpError)
    return error.status === 400 && error.serverCode === 'DIGEST_MISMATCH';
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'ERR_FILE_CHANGED';
}

/**
 * Sends what the scheduler releases: claims each released key's rows (a
 * lease), decides, sends within the concurrency limit, and handles failures
 * per shared/DESIGN.md "Failures" with its own retry schedule and a per-item
 * RetryBudget whose state lives in the row. Outcomes go to the recorder.
 */
export class Dispatcher {
  readonly #o: DispatcherOptions;
  /** Keys with a release in progress here. */
  readonly #busy = new Map<string, number>();
  /** Seqs this dispatcher holds a lease on. */
  readonly held = new Set<number>();
  #inFlight = 0;
  #retrying = 0;
  #breaker: 'closed' | 'open' = 'closed';
  #wake: (() => void)[] = [];

  constructor(options: DispatcherOptions) {
    if (typeof options?.remote?.put !== 'function') {
      throw new TypeError(
        `remote must have put() and delete(), got ${describeValue(options?.remote)}`,
      );
    }
    this.#o = options;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get retrying(): number {
    return this.#retrying;
  }

  get breaker(): 'closed' | 'open' {
    return this.#breaker;
  }

  isBusy(key: string): boolean {
    return this.#busy.has(key);
  }

  /** The scheduler's onRelease. */
  async dispatch(release: Release<ChangeRef>): Promise<ReleaseOutcome> {
    const runs = new Map<string, KeyRun>();
    for (const change of release.changes) {
      const run = runs.get(change.key) ?? {
        maxSeq: 0,
        knownNew: new Map<number, boolean>(),
        immediate: release.immediate,
        startedAtMs: undefined,
      };
      run.maxSeq = Math.max(run.maxSeq, change.value.seq);
      run.knownNew.set(change.value.seq, change.value.knownNew);
      runs.set(change.key, run);
    }
    for (const key of runs.keys()) this.#busy.set(key, (this.#busy.get(key) ?? 0) + 1);
    const starts = await Promise.all(
      [...runs].map(async ([key, run]) => {
        try {
          await this.#runKey(key, run);
        } finally {
          const left = (this.#busy.get(key) ?? 1) - 1;
          if (left === 0) this.#busy.delete(key);
          else this.#busy.set(key, left);
          this.#notify();
        }
        return run.startedAtMs;
      }),
    );
    const started = starts.filter((s): s is number => s !== undefined);
    return started.length === 0
      ? { sent: false }
      : { sent: true, startedAtMs: Math.min(...started) };
  }

  async #runKey(key: string, run: KeyRun): Promise<void> {
    const { ledger, recorder, signal } = this.#o;
    try {
      for (;;) {
        const row = await this.#claimHead(key, run.maxSeq);
        if (row === 'none') return;
        if (row === 'blocked') {
          for (const seq of ledger.openOf(key, run.maxSeq)) {
            recorder.timedOut({ key, seq }, new Error('held by dependsOn keys that were not sent'));
          }
          return;
        }
        const arrived = await this.#send(row, run);
        this.#notify();
        if (!arrived) {
          // The key's head stays pending, so its later versions cannot go before it.
          for (const seq of ledger.openOf(key, run.maxSeq)) {
            recorder.timedOut(
              { key, seq },
              new Error('held behind an earlier version that did not arrive'),
            );
          }
          return;
        }
      }
    } catch (error) {
      if (!signal.aborted) throw error;
      for (const seq of ledger.openOf(key, run.maxSeq))
        recorder.timedOut({ key, seq }, signal.reason);
    }
  }

  /** The oldest pending row of the key if it belongs to this release, waiting out what holds it. */
  async #claimHead(key: string, maxSeq: number): Promise<Claimed> {
    const { store, scope, clock, signal } = this.#o;
    for (;;) {
      signal.throwIfAborted();
      await this.#o.beforeClaim();
      // One `now` for the claim and for the reasons below: with two readings, a
      // row due between them was neither claimed nor waited for.
      const now = clock.now();
      const [row] = await store.claim(scope, {
        owner: this.#o.owner,
        leaseMs: this.#o.leaseMs,
        keys: [key],
        limit: 1,
        now,
      });
      if (row) {
        if (row.seq <= maxSeq) return row;
        // A later version queued in the scheduler: it goes when its window says so.
        await store.release(scope, key, row.seq, {
          owner: this.#o.owner,
          nextAttemptAtMs: row.nextAttemptAtMs,
        });
        return 'none';
      }
      const head = await this.#headOf(key);
      if (!head || head.seq > maxSeq) return 'none';
      if (isLeased(head, now)) {
        // A lease of a process that died: it expires, then the row is ours.
        await clock.sleep((head.leaseExpiresAtMs ?? now) - now, signal);
      } else if (head.nextAttemptAtMs > now) {
        await clock.sleep(head.nextAttemptAtMs - now, signal);
      } else if (head.dependsOn.some((dep) => this.#busy.has(dep) || this.#o.isQueued(dep))) {
        await this.#changed();
      } else {
        return 'blocked';
      }
    }
  }

  async #headOf(key: string): Promise<PendingRow | undefined> {
    for await (const row of this.#o.store.pendingEntries(this.#o.scope)) {
      if (row.key === key) return row;
    }
    return undefined;
  }

  #changed(): Promise<void> {
    const { signal } = this.#o;
    signal.throwIfAborted();
    return new Promise((resolve, reject) => {
      const onAbort = (): void => reject(signal.reason as Error);
      signal.addEventListener('abort', onAbort, { once: true });
      this.#wake.push(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = [];
    for (const resolve of wake) resolve();
  }

  #budgetOf(row: PendingRow): RetryBudget {
    return new RetryBudget({
      clock: this.#o.clock,
      maxAttempts: this.#o.maxAttempts,
      maxTimeMs: this.#o.maxTimeMs,
      state:
        row.budgetStartedAtMs === null
          ? { attempts: row.attempts }
          : { attempts: row.attempts, startedAtMs: row.budgetStartedAtMs },
    });
  }

  async #release(
    row: PendingRow,
    budget: RetryBudget,
    nextAttemptAtMs: number,
    error: unknown,
  ): Promise<void> {
    this.held.delete(row.seq);
    await this.#o.store.release(this.#o.scope, row.key, row.seq, {
      owner: this.#o.owner,
      nextAttemptAtMs,
      attempts: budget.attempts,
      budgetStartedAtMs: budget.startedAtMs ?? null,
      lastError: error === undefined ? null : describeError(error),
    });
  }

  /** Sends one version until it ends; true when it left `pending` (arrived, skipped or dead-lettered). */
  async #send(first: PendingRow, run: KeyRun): Promise<boolean> {
    const o = this.#o;
    const { clock, signal, recorder } = o;
    let row = first;
    this.held.add(row.seq);
    let budget = this.#budgetOf(row);
    let freeCalls = 0;
    let previousDelayMs: number | undefined;
    for (;;) {
      let permit: () => void = noop;
      try {
        await o.gate.wait(signal);
        if (!run.immediate) permit = await o.semaphore.acquire(signal);
      } catch (error) {
        await this.#release(row, budget, row.nextAttemptAtMs, undefined);
        recorder.timedOut(row, error);
        return false;
      }
      let sent: SendResult | undefined;
      let failure: unknown;
      let sending = false;
      try {
        budget.start();
        const decision = await o.decider.decide({
          row,
          knownNew: run.knownNew.get(row.seq) ?? false,
          listing: o.listing(),
          signal,
        });
        if (!decision.send) {
          permit();
          permit = noop;
          this.held.delete(row.seq);
          await recorder.skipped(row, decision);
          return true;
        }
        run.startedAtMs ??= clock.now();
        sending = true;
        this.#inFlight++;
        o.events.emit('sending', { key: row.key, seq: row.seq, attempt: budget.attempts + 1 });
        if (row.kind === 'put') {
          const result = await o.remote.put(
            {
              key: row.key,
              body: versionBody(row, o.files),
              idempotencyKey: row.idempotencyKey,
              ...(row.contentType === null ? {} : { contentType: row.contentType }),
            },
            { signal },
          );
          sent = { kind: 'put', result };
        } else {
          const result = await o.remote.delete(row.key, {
            idempotencyKey: row.idempotencyKey,
            signal,
          });
          sent = { kind: 'delete', result };
        }
      } catch (error) {
        failure = error;
      } finally {
        permit();
        if (sending) this.#inFlight--;
      }

      if (sent) {
        this.#breaker = 'closed';
        this.held.delete(row.seq);
        await recorder.sent(row, sent);
        return true;
      }

      if (!signal.aborted && isFileChanged(failure, row)) {
        const next = await this.#requeueChanged(row, budget, run, failure);
        if (!next) return false;
        row = next;
        budget = this.#budgetOf(row);
        continue;
      }

      const decision = classifyError(failure, {
        method: row.kind === 'put' ? 'PUT' : 'DELETE',
        target: row.kind === 'put' ? 'project' : 'item',
        signal,
        nowMs: clock.now(),
      });
      switch (decision.action) {
        case 'done':
          this.held.delete(row.seq);
          await recorder.sent(row, { kind: 'delete', result: { existed: false } });
          return true;
        case 'abort':
          await this.#release(row, budget, row.nextAttemptAtMs, undefined);
          recorder.timedOut(row, signal.aborted ? signal.reason : failure);
          return false;
        case 'pause': {
          recorder.failedAttempt();
          await this.#release(row, budget, clock.now(), failure);
          o.gate.pause({
            reason: decision.reason,
            status: decision.status,
            message:
              decision.reason === 'auth'
                ? `the remote refused the token (HTTP ${decision.status}); every change stays pending. Fix the token and run again.`
                : `the remote has no such project (HTTP ${decision.status}); every change stays pending.`,
          });
          // Wait unleased, so a newer version may replace this one meanwhile.
          try {
            await o.gate.wait(signal);
          } catch (error) {
            recorder.timedOut(row, error);
            return false;
          }
          const again = await this.#reclaim(row, run);
          if (again === undefined) return false;
          row = again;
          budget = this.#budgetOf(row);
          continue;
        }
        case 'dead-letter':
          recorder.failedAttempt();
          budget.recordAttempt();
          this.held.delete(row.seq);
          await recorder.deadLettered(
            { ...row, attempts: budget.attempts },
            decision.status,
            failure,
          );
          return true;
        case 'fail':
          recorder.failedAttempt();
          budget.recordAttempt();
          await this.#release(row, budget, clock.now(), failure);
          recorder.errored(row, failure);
          return false;
        case 'retry': {
          recorder.failedAttempt();
          if (failure instanceof CircuitOpenError) this.#breaker = 'open';
          if (decision.usesAttempt) budget.recordAttempt();
          else freeCalls++;
          const backoffMs = o.backoff(Math.max(1, budget.attempts + freeCalls), previousDelayMs);
          previousDelayMs = backoffMs;
          const delayMs = Math.min(o.maxDelayMs, Math.max(backoffMs, decision.retryAfterMs ?? 0));
          const limit = decision.usesAttempt ? budget.limitHit(delayMs) : undefined;
          if (limit !== undefined) {
            await this.#release(row, budget, clock.now(), failure);
            recorder.timedOut(
              row,
              new RetryBudgetError(
                `gave up after ${budget.attempts} attempts (${limit} budget spent): ${describeError(failure)}`,
                budget.attempts,
                { cause: failure },
              ),
            );
            return false;
          }
          await this.#release(row, budget, clock.now() + delayMs, failure);
          o.stats.recordRetry();
          o.events.emit('retrying', {
            key: row.key,
            seq: row.seq,
            attempt: budget.attempts,
            delayMs,
            error: describeError(failure),
          });
          this.#retrying++;
          const startMs = clock.now();
          try {
            await clock.sleep(delayMs, signal);
          } catch (error) {
            recorder.timedOut(row, error);
            return false;
          } finally {
            this.#retrying--;
            o.stats.addBackoffMs(Math.max(0, clock.now() - startMs));
          }
          const again = await this.#reclaim(row, run);
          if (again === undefined) return false;
          row = again;
          budget = this.#budgetOf(row);
          continue;
        }
      }
    }
  }

  /**
   * After a wait: a newer queued change of the key replaces the waiting version
   * (its retry state carries on), then the key's head is claimed again.
   */
  async #reclaim(row: PendingRow, run: KeyRun): Promise<PendingRow | undefined> {
    const newer = await this.#o.takeNewer(row.key);
    if (newer) {
      run.maxSeq = Math.max(run.maxSeq, newer.seq);
      run.knownNew.set(newer.seq, newer.knownNew);
    }
    const next = await this.#claimHead(row.key, run.maxSeq);
    if (next === 'none' || next === 'blocked') return undefined;
    this.held.add(next.seq);
    return next;
  }

  /** A file changed while it was sent: a new version with its new content, never a dead letter. */
  async #requeueChanged(
    row: PendingRow,
    budget: RetryBudget,
    run: KeyRun,
    failure: unknown,
  ): Promise<PendingRow | undefined> {
    const o = this.#o;
    const ref = await o.files?.refresh(row.body as FileRef, { signal: o.signal });
    await this.#release(row, budget, o.clock.now(), failure);
    if (!ref) {
      o.recorder.timedOut(row, new Error('the file went away while it was sent'));
      return undefined;
    }
    const fresh = await o.store.append(o.scope, {
      key: row.key,
      kind: 'put',
      digest: ref.digest,
      size: ref.size,
      body: ref,
      contentType: row.contentType,
      lane: row.lane,
      dependsOn: row.dependsOn,
    });
    o.ledger.begin(row.key, fresh.seq, false);
    await o.supersede(row.key, fresh.seq);
    run.maxSeq = Math.max(run.maxSeq, fresh.seq);
    run.knownNew.set(fresh.seq, run.knownNew.get(row.seq) ?? false);
    const next = await this.#claimHead(row.key, run.maxSeq);
    if (next === 'none' || next === 'blocked') return undefined;
    this.held.add(next.seq);
    return next;
  }
}
