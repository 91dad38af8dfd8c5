import type { Emitter } from '../events/emitter.ts';
import { CircuitOpenError, HttpError, RetryBudgetError } from '../errors/upsync-error.ts';
import type { Semaphore } from '../limits/semaphore.ts';
import { isLeased } from '../outbox/outbox-checks.ts';
import type { OutboxScope, OutboxStore, PendingRow } from '../outbox/outbox-store.ts';
import type { Remote, RemoteBatchResult } from '../remote/remote.ts';
import type { Backoff } from '../retry/backoff.ts';
import { classifyError } from '../retry/classify.ts';
import { RetryBudget, type RetryBudgetLimit } from '../retry/retry-budget.ts';
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
import { keepLeases } from './lease-keeper.ts';

export interface DispatcherOptions {
  store: OutboxStore;
  scope: OutboxScope;
  clock: Clock;
  /** The lease owner (this process or tab). */
  owner: string;
  leaseMs: number;
  /**
   * Puts and deletes get one attempt per call here: the retry schedule is this
   * class's. With `putBatch`, a release of several keys (the store-wide group)
   * sends its puts in one call.
   */
  remote: Pick<Remote, 'put' | 'delete' | 'putBatch'>;
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
  /** A send arrived after the breaker refused one: the remote is back. */
  onRecovered?: () => void;
}

interface KeyRun {
  maxSeq: number;
  readonly knownNew: Map<number, boolean>;
  readonly immediate: boolean;
  startedAtMs: number | undefined;
  /** The batch gave up on the key's head (budget spent): nothing more of it goes in this release. */
  ended: boolean;
}

/** A version claimed for a batch, with its retry budget. */
interface BatchEntry {
  readonly row: PendingRow;
  readonly run: KeyRun;
  readonly budget: RetryBudget;
}

/**
 * Bodies above this go alone, on the per-item path: a batch holds its bodies
 * in memory (base64 in the upsync protocol), and a large one would crowd the
 * small ones out of the request.
 */
const BATCH_MAX_ITEM_BYTES = 1024 * 1024;

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
 * Which limit another attempt after `delayMs` would pass, if any. A refusal
 * that uses no attempt (an open breaker) still spends time: a long outage ends
 * the version as timed out, not never.
 */
function budgetLimit(
  budget: RetryBudget,
  usesAttempt: boolean,
  delayMs: number,
): RetryBudgetLimit | undefined {
  if (usesAttempt) return budget.limitHit(delayMs);
  return budget.elapsedMs + delayMs > budget.maxTimeMs ? 'time' : undefined;
}

/**
 * Whether a failed send may have been applied: no HTTP answer came (a reset,
 * a timeout, an abort). An HTTP answer, even a 5xx, says what happened, and a
 * breaker refusal sent nothing.
 */
function answerLost(failure: unknown): boolean {
  return !(failure instanceof HttpError) && !(failure instanceof CircuitOpenError);
}

/**
 * How long a version waits before its next try. A remote's refusal backs off
 * exponentially, never less than its Retry-After. A refusal that sent nothing
 * (an open breaker, or a host paused by a 503's Retry-After) waits for the
 * moment it names plus a first-attempt jitter, so the waiters spread out
 * instead of probing at once, and without growing the exponent: a long pause
 * must not leave the queue sleeping long after the host is back.
 */
function retryDelayMs(
  backoff: Backoff,
  maxDelayMs: number,
  attempts: number,
  decision: { usesAttempt: boolean; retryAfterMs?: number | undefined },
  previousDelayMs: number | undefined,
): { delayMs: number; backoffMs: number | undefined } {
  if (!decision.usesAttempt) {
    return {
      delayMs: Math.min(maxDelayMs, (decision.retryAfterMs ?? 0) + backoff(1, undefined)),
      backoffMs: undefined,
    };
  }
  const backoffMs = backoff(Math.max(1, attempts), previousDelayMs);
  return {
    delayMs: Math.min(maxDelayMs, Math.max(backoffMs, decision.retryAfterMs ?? 0)),
    backoffMs,
  };
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

  /**
   * A worker slot taken while the engine is not paused. Most sends wait for a
   * slot, not at the gate, so a pause that comes while they queue must send
   * them back to the gate: otherwise `p` would stop nothing until the queue drained.
   */
  async #openSlot(signal: AbortSignal): Promise<() => void> {
    const o = this.#o;
    for (;;) {
      await o.gate.wait(signal);
      const permit = await o.semaphore.acquire(signal);
      if (!o.gate.paused) return permit;
      permit();
    }
  }

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

  #closeBreaker(): void {
    if (this.#breaker === 'closed') return;
    this.#breaker = 'closed';
    this.#o.onRecovered?.();
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
        ended: false,
      };
      run.maxSeq = Math.max(run.maxSeq, change.value.seq);
      run.knownNew.set(change.value.seq, change.value.knownNew);
      runs.set(change.key, run);
    }
    for (const key of runs.keys()) this.#busy.set(key, (this.#busy.get(key) ?? 0) + 1);
    // A batch that fails midway leaves its unsettled rows released; the per-key
    // path below meets the same state (an abort, a store failure) and ends each key.
    await this.#sendBatch(runs, release.immediate).catch(noop);
    const starts = await Promise.all(
      [...runs].map(async ([key, run]) => {
        try {
          if (run.ended) return run.startedAtMs;
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

  /**
   * The batch lane: the head put of each key of a several-key release goes in
   * one putBatch call, and each item's result is handled by the rules of a
   * single put. Deletes, large bodies, rows held by dependsOn or due later,
   * and every item whose outcome needs the per-item path (a retry once due, a
   * pause, a file that changed) are released for #runKey.
   */
  async #sendBatch(runs: Map<string, KeyRun>, immediate: boolean): Promise<void> {
    const o = this.#o;
    const { store, scope, clock, signal, recorder } = o;
    if (!o.remote.putBatch || immediate || runs.size < 2 || o.gate.paused) return;
    const entries: BatchEntry[] = [];
    const unsettled = new Set<PendingRow>();
    const stop = this.#keepLeases(() => unsettled);
    try {
      await o.beforeClaim();
      for (const [key, run] of runs) {
        signal.throwIfAborted();
        const [row] = await store.claim(scope, {
          owner: o.owner,
          leaseMs: o.leaseMs,
          keys: [key],
          limit: 1,
          now: clock.now(),
        });
        if (!row) continue;
        unsettled.add(row);
        if (
          row.seq > run.maxSeq ||
          row.kind !== 'put' ||
          row.size > BATCH_MAX_ITEM_BYTES ||
          row.dependsOn.length > 0
        ) {
          continue;
        }
        this.held.add(row.seq);
        const budget = this.#budgetOf(row);
        budget.start();
        let decision;
        try {
          decision = await o.decider.decide({
            row,
            knownNew: run.knownNew.get(row.seq) ?? false,
            listing: o.listing(),
            signal,
          });
        } catch {
          continue; // A failed HEAD: the per-item path retries it by the rules.
        }
        if (!decision.send) {
          unsettled.delete(row);
          this.held.delete(row.seq);
          await recorder.skipped(row, decision);
          continue;
        }
        entries.push({ row, run, budget });
      }
      if (entries.length < 2) return;
      const permit = await this.#openSlot(signal);
      const startedAtMs = clock.now();
      for (const { row, run, budget } of entries) {
        run.startedAtMs ??= startedAtMs;
        o.events.emit('sending', { key: row.key, seq: row.seq, attempt: budget.attempts + 1 });
      }
      this.#inFlight += entries.length;
      let results;
      try {
        results = await o.remote.putBatch(
          entries.map(({ row }) => ({
            key: row.key,
            body: versionBody(row, o.files),
            idempotencyKey: row.idempotencyKey,
            ...(row.contentType === null ? {} : { contentType: row.contentType }),
          })),
          { signal },
        );
      } catch {
        // The whole request was refused (auth, an outage, a file that changed
        // while read): each item takes the per-item path, whose own send meets
        // the same answer and applies its rule.
        return;
      } finally {
        permit();
        this.#inFlight -= entries.length;
      }
      for (const [index, entry] of entries.entries()) {
        const result = results[index];
        if (result?.key !== entry.row.key) continue;
        if (await this.#batchOutcome(entry, result)) unsettled.delete(entry.row);
      }
    } finally {
      stop();
      for (const row of unsettled) {
        this.held.delete(row.seq);
        await store
          .release(scope, row.key, row.seq, {
            owner: o.owner,
            nextAttemptAtMs: row.nextAttemptAtMs,
          })
          .catch(noop);
      }
      this.#notify();
    }
  }

  /** One item's batch result; true when it is settled here (no release for the per-item path). */
  async #batchOutcome(
    { row, run, budget }: BatchEntry,
    result: RemoteBatchResult,
  ): Promise<boolean> {
    const o = this.#o;
    const { clock, signal, recorder } = o;
    if (result.ok) {
      this.#closeBreaker();
      this.held.delete(row.seq);
      await recorder.sent(row, { kind: 'put', result: result.result });
      return true;
    }
    const failure = result.error;
    // A file that changed is read again and requeued by the per-item path.
    if (isFileChanged(failure, row)) return false;
    const decision = classifyError(failure, {
      method: 'PUT',
      target: 'project',
      signal,
      nowMs: clock.now(),
    });
    if (decision.action === 'dead-letter') {
      recorder.failedAttempt();
      budget.recordAttempt();
      this.held.delete(row.seq);
      await recorder.deadLettered({ ...row, attempts: budget.attempts }, decision.status, failure);
      return true;
    }
    // Pause, fail and the rest: the per-item path sends it alone and applies the rule.
    if (decision.action !== 'retry') return false;
    recorder.failedAttempt();
    if (decision.usesAttempt) budget.recordAttempt();
    const { delayMs } = retryDelayMs(o.backoff, o.maxDelayMs, budget.attempts, decision, undefined);
    const limit = budgetLimit(budget, decision.usesAttempt, delayMs);
    if (limit !== undefined) {
      await this.#giveUp(row, budget, limit, failure);
      run.ended = true;
      for (const seq of o.ledger.openOf(row.key, run.maxSeq)) {
        recorder.timedOut(
          { key: row.key, seq },
          new Error('held behind an earlier version that did not arrive'),
        );
      }
      return true;
    }
    // The per-key path claims it again once due, on its own retry schedule.
    await this.#scheduleRetry(row, budget, delayMs, failure, decision.usesAttempt);
    return true;
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
        // Nothing more of this release for the key: no claim that would miss
        // and then look for the key's head among every pending row.
        if (arrived && ledger.openOf(key, run.maxSeq).length === 0) return;
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

  /**
   * A write may have reached the remote without its answer reaching us: what
   * `synced` says of the key is no longer known to be true, so a later
   * version equal to it must be checked, not skipped.
   */
  async #forgetSynced(key: string): Promise<void> {
    try {
      await this.#o.store.setSynced(this.#o.scope, key, null);
    } catch {
      // A closing store: the row stays pending and is decided again next run.
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

  /** Frees the row until `delayMs` from now, with its budget saved, and says it will be retried. */
  async #scheduleRetry(
    row: PendingRow,
    budget: RetryBudget,
    delayMs: number,
    failure: unknown,
    /** False for a refusal that sent nothing (an open breaker): no request is repeated. */
    resends: boolean,
  ): Promise<void> {
    await this.#release(row, budget, this.#o.clock.now() + delayMs, failure);
    if (resends) this.#o.stats.recordRetry();
    this.#o.events.emit('retrying', {
      key: row.key,
      seq: row.seq,
      attempt: budget.attempts,
      delayMs,
      error: describeError(failure),
      resend: resends,
    });
  }

  /** The budget is spent: the row stays pending, free at once, and the version counts timed out. */
  async #giveUp(
    row: PendingRow,
    budget: RetryBudget,
    limit: RetryBudgetLimit,
    failure: unknown,
  ): Promise<void> {
    await this.#release(row, budget, this.#o.clock.now(), failure);
    this.#o.recorder.timedOut(
      row,
      new RetryBudgetError(
        `gave up after ${budget.attempts} attempts (${limit} budget spent): ${describeError(failure)}`,
        budget.attempts,
        { cause: failure },
      ),
    );
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
    const lease = { row: first };
    const stop = this.#keepLeases(() => [lease.row]);
    try {
      return await this.#sendVersion(lease, run);
    } finally {
      stop();
    }
  }

  #keepLeases(rows: () => Iterable<PendingRow>): () => void {
    const { store, scope, clock, owner, leaseMs } = this.#o;
    return keepLeases({ store, scope, clock, owner, leaseMs, rows });
  }

  /** #send's work; `lease.row` follows the row in hand (a retry or a requeue claims another). */
  async #sendVersion(lease: { row: PendingRow }, run: KeyRun): Promise<boolean> {
    const o = this.#o;
    const { clock, signal, recorder } = o;
    let row = lease.row;
    this.held.add(row.seq);
    let budget = this.#budgetOf(row);
    let previousDelayMs: number | undefined;
    for (;;) {
      let permit: () => void = noop;
      try {
        if (run.immediate) await o.gate.wait(signal);
        else permit = await this.#openSlot(signal);
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
        this.#closeBreaker();
        this.held.delete(row.seq);
        await recorder.sent(row, sent);
        return true;
      }
      if (sending && answerLost(failure)) await this.#forgetSynced(row.key);

      if (!signal.aborted && isFileChanged(failure, row)) {
        const next = await this.#requeueChanged(row, budget, run, failure);
        if (!next) return false;
        row = next;
        lease.row = row;
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
          lease.row = row;
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
          const next = retryDelayMs(
            o.backoff,
            o.maxDelayMs,
            budget.attempts,
            decision,
            previousDelayMs,
          );
          previousDelayMs = next.backoffMs ?? previousDelayMs;
          const { delayMs } = next;
          const limit = budgetLimit(budget, decision.usesAttempt, delayMs);
          if (limit !== undefined) {
            await this.#giveUp(row, budget, limit, failure);
            return false;
          }
          await this.#scheduleRetry(row, budget, delayMs, failure, decision.usesAttempt);
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
          lease.row = row;
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
