import type { Emitter } from '../events/emitter.ts';
import type { OutboxScope, OutboxStore, PendingRow } from '../outbox/outbox-store.ts';
import type { RemoteDeleteResult, RemotePutResult } from '../remote/remote.ts';
import type { Outcome } from '../stats/stats.ts';
import type { Clock } from '../time/clock.ts';
import type { Decision } from './decider.ts';
import type { EngineEvents } from './engine-types.ts';
import type { VersionLedger } from './version-ledger.ts';
import { describeValue } from './describe-value.ts';

/** One version that did not arrive, for the report. */
export interface ReportedError {
  readonly key: string;
  readonly seq: number;
  readonly outcome: 'errored' | 'timedOut';
  readonly deadLettered: boolean;
  readonly status: number | null;
  readonly message: string;
}

export type SendResult =
  | { readonly kind: 'put'; readonly result: RemotePutResult }
  | { readonly kind: 'delete'; readonly result: RemoteDeleteResult };

export interface RecorderOptions {
  store: OutboxStore;
  scope: OutboxScope;
  ledger: VersionLedger;
  events: Emitter<EngineEvents>;
  clock: Clock;
  /** Errors kept for the report; default 100 (the counts stay exact beyond it). */
  maxErrors?: number;
}

/** A short, token-free line for an error (the auth middleware already redacted tokens). */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/**
 * Records how each version ended: acknowledges exactly the sent seq with the
 * synced row (lease, send, then acknowledge), moves refusals to the dead-letter
 * queue, counts every outcome once, and emits it.
 */
export class Recorder {
  readonly #o: RecorderOptions;
  readonly #maxErrors: number;
  readonly errors: ReportedError[] = [];
  #lastSyncAtMs: number | null = null;
  #consecutiveFailures = 0;

  constructor(options: RecorderOptions) {
    if (typeof options?.store?.ack !== 'function') {
      throw new TypeError(`store must be an OutboxStore, got ${describeValue(options?.store)}`);
    }
    this.#o = options;
    this.#maxErrors = options.maxErrors ?? 100;
  }

  get lastSyncAtMs(): number | null {
    return this.#lastSyncAtMs;
  }

  get consecutiveFailures(): number {
    return this.#consecutiveFailures;
  }

  /** An attempt failed (it may be retried): for the status's failure streak. */
  failedAttempt(): void {
    this.#consecutiveFailures++;
  }

  async sent(row: PendingRow, sent: SendResult): Promise<void> {
    const { store, scope } = this.#o;
    let outcome: Outcome;
    if (sent.kind === 'put') {
      const { result } = sent;
      outcome = result.unchanged ? 'skipped' : result.created ? 'created' : 'updated';
      await store.ack(scope, row.key, row.seq, {
        digest: row.digest,
        size: result.size,
        etag: result.etag,
      });
    } else {
      outcome = 'deleted';
      await store.ack(scope, row.key, row.seq, null);
    }
    this.#arrived(row, outcome);
  }

  async skipped(row: PendingRow, decision: Decision): Promise<void> {
    const { store, scope } = this.#o;
    const remote = decision.remote;
    await store.ack(
      scope,
      row.key,
      row.seq,
      row.kind === 'delete'
        ? null
        : {
            digest: row.digest,
            size: remote?.size ?? row.size,
            etag: remote?.etag ?? null,
            remoteMtimeMs: remote?.modifiedMs ?? null,
          },
    );
    this.#arrived(row, 'skipped');
  }

  async deadLettered(row: PendingRow, status: number | null, error: unknown): Promise<void> {
    const message = describeError(error);
    await this.#o.store.deadLetter(this.#o.scope, row.key, row.seq, {
      reason: message,
      status,
      attempts: row.attempts,
    });
    this.#ended(row, 'errored', { deadLettered: true, status, message, stays: false });
  }

  /** A timed-out version is sent again (a resweep): its outcome and reported error are undone. */
  reopen(row: Pick<PendingRow, 'key' | 'seq' | 'ordered'>): boolean {
    if (!this.#o.ledger.reopen(row.key, row.seq, row.ordered)) return false;
    const at = this.errors.findIndex((error) => error.seq === row.seq);
    if (at >= 0) this.errors.splice(at, 1);
    return true;
  }

  /** The retry budget or the shutdown ran out; the row stays pending for the next run. */
  timedOut(row: Pick<PendingRow, 'key' | 'seq'>, error: unknown): void {
    this.#ended(row, 'timedOut', {
      deadLettered: false,
      status: statusOf(error),
      message: describeError(error),
      stays: true,
    });
  }

  /** Refused for good without being about the item (or a bug); the row stays pending. */
  errored(row: Pick<PendingRow, 'key' | 'seq'>, error: unknown): void {
    this.#ended(row, 'errored', {
      deadLettered: false,
      status: statusOf(error),
      message: describeError(error),
      stays: true,
    });
  }

  #arrived(row: PendingRow, outcome: Outcome): void {
    this.#lastSyncAtMs = this.#o.clock.now();
    this.#consecutiveFailures = 0;
    this.#o.ledger.finish(row.key, row.seq, outcome);
    this.#o.events.emit('outcome', {
      key: row.key,
      seq: row.seq,
      outcome,
      deadLettered: false,
      status: null,
      error: null,
    });
  }

  #ended(
    row: Pick<PendingRow, 'key' | 'seq'>,
    outcome: 'errored' | 'timedOut',
    details: { deadLettered: boolean; status: number | null; message: string; stays: boolean },
  ): void {
    // A row this command already gave up on ends only once; a dead letter always counts.
    if (!details.deadLettered && !this.#o.ledger.isOpen(row.seq)) return;
    this.#o.ledger.finish(row.key, row.seq, outcome, {
      deadLettered: details.deadLettered,
      error: details.message,
      stays: details.stays,
    });
    if (this.errors.length < this.#maxErrors) {
      this.errors.push({
        key: row.key,
        seq: row.seq,
        outcome,
        deadLettered: details.deadLettered,
        status: details.status,
        message: details.message,
      });
    }
    this.#o.events.emit('outcome', {
      key: row.key,
      seq: row.seq,
      outcome,
      deadLettered: details.deadLettered,
      status: details.status,
      error: details.message,
    });
  }
}

function statusOf(error: unknown): number | null {
  const status = (error as { status?: unknown } | null)?.status;
  return typeof status === 'number' ? status : null;
}
