import type { Emitter } from '../events/emitter.ts';
import type { OutboxScope, OutboxStore, OutboxVersion } from '../outbox/outbox-store.ts';
import type { ScheduledChange, ScheduleOptions } from '../scheduling/scheduler.ts';
import type { EngineEvents, FileRef, PushBody, PushOptions, PushReceipt } from './engine-types.ts';
import { sha256Hex, toBytes } from './version-body.ts';
import type { VersionLedger } from './version-ledger.ts';
import { describeValue } from './describe-value.ts';

/** What the scheduler carries for each version: the row is in the outbox, this points at it. */
export interface ChangeRef {
  readonly seq: number;
  readonly knownNew: boolean;
}

export interface IntakeOptions {
  store: OutboxStore;
  scope: OutboxScope;
  ledger: VersionLedger;
  events: Emitter<EngineEvents>;
  /** The scheduler's push. */
  schedule: (key: string, change: ChangeRef, options: ScheduleOptions) => void;
  /** Whether the key is queued or being sent now (then a newer push must wait its turn). */
  isActive: (key: string) => boolean;
  /** Seqs the dispatcher holds a lease on (a supersede leaves them). */
  held: ReadonlySet<number>;
  onError: (error: unknown) => void;
}

const LANES = new Set(['immediate', 'normal', 'batch']);

function isFileRef(body: unknown): body is FileRef {
  return (
    typeof body === 'object' &&
    body !== null &&
    !(body instanceof Uint8Array) &&
    (body as { type?: unknown }).type === 'file'
  );
}

/**
 * Takes changes in: writes each version to the outbox (durable before the
 * push resolves), counts it, and hands it to the scheduler. When the scheduler
 * replaces a queued change, the older rows are superseded here.
 */
export class Intake {
  readonly #o: IntakeOptions;
  readonly #tasks = new Set<Promise<void>>();

  constructor(options: IntakeOptions) {
    if (typeof options?.store?.append !== 'function') {
      throw new TypeError(`store must be an OutboxStore, got ${describeValue(options?.store)}`);
    }
    this.#o = options;
  }

  async push(key: string, body: PushBody, options: PushOptions = {}): Promise<PushReceipt> {
    if (typeof key !== 'string' || key === '') {
      throw new TypeError(`key must be a non-empty string, got ${JSON.stringify(key)}`);
    }
    options.signal?.throwIfAborted();
    const lane = options.lane ?? 'normal';
    if (!LANES.has(lane)) {
      throw new TypeError(`lane must be immediate, normal or batch, got ${JSON.stringify(lane)}`);
    }
    const ordered = options.ordered ?? false;
    const common = {
      key,
      lane,
      ordered,
      ...(options.dependsOn ? { dependsOn: options.dependsOn } : {}),
    };
    let version: OutboxVersion;
    if (body === null || options.delete === true) {
      version = { ...common, kind: 'delete' };
    } else if (isFileRef(body)) {
      version = {
        ...common,
        kind: 'put',
        digest: body.digest,
        size: body.size,
        body,
        contentType: options.contentType ?? null,
      };
    } else if (typeof body === 'string' || body instanceof Uint8Array) {
      const bytes = toBytes(body);
      version = {
        ...common,
        kind: 'put',
        digest: await sha256Hex(bytes),
        size: bytes.byteLength,
        body: { type: 'bytes', bytes },
        contentType: options.contentType ?? null,
      };
    } else {
      throw new TypeError(
        `body must be bytes, a string, a file reference or null, got ${Object.prototype.toString.call(body)}`,
      );
    }
    const { store, scope, ledger } = this.#o;
    const row = await store.append(scope, version);
    ledger.begin(key, row.seq, ordered);
    this.#o.events.emit('accepted', { key, seq: row.seq, lane, kind: row.kind });
    // Rows this command already gave up on (timed out, refused) would otherwise
    // be sent before the new content; the newest wins.
    if (!ordered && ledger.hasStale(key) && !this.#o.isActive(key)) {
      await store.supersede(scope, key, row.seq);
      ledger.forgetStale(key);
    }
    const delivered = lane === 'immediate' ? ledger.watch(row.seq) : undefined;
    this.#o.schedule(
      key,
      { seq: row.seq, knownNew: options.knownNew ?? false },
      { ordered, immediate: lane === 'immediate' },
    );
    return {
      key,
      seq: row.seq,
      idempotencyKey: row.idempotencyKey,
      ...(delivered ? { delivered } : {}),
    };
  }

  /** The scheduler's onCoalesced: the replaced change's row goes, its retry state carries on. */
  coalesced(replaced: ScheduledChange<ChangeRef>, by: ScheduledChange<ChangeRef>): void {
    this.supersede(replaced.key, by.value.seq);
  }

  /** Drops the key's older unsent rows in favour of `seq` and counts them as coalesced. */
  supersede(key: string, seq: number): void {
    const { store, scope, ledger, events } = this.#o;
    const gone = ledger.supersededBy(key, seq, this.#o.held);
    ledger.coalesce(gone, seq);
    for (const old of gone) events.emit('coalesced', { key, seq: old, by: seq });
    // One reaction per outcome, not then() plus finally(): this runs for every
    // coalesced push, and each extra promise showed in a burst's profile.
    const task: Promise<void> = store.supersede(scope, key, seq).then(
      () => {
        this.#tasks.delete(task);
      },
      (error: unknown) => {
        this.#tasks.delete(task);
        this.#o.onError(error);
      },
    );
    this.#tasks.add(task);
  }

  /** Resolves when every supersede started so far is written. */
  async idle(): Promise<void> {
    while (this.#tasks.size > 0) await Promise.all(this.#tasks);
  }
}
