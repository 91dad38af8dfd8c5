import type { Readable } from 'node:stream';

/** A request body already on durable storage (or in memory when small), hashed on the way. */
export interface StagedBody {
  readonly size: number;
  /** SHA-256 of the body, 64 lowercase hex characters. */
  readonly sha256: string;
}

/** What the server answers; kept as is for idempotent replay. */
export interface StoredAnswer {
  readonly status: number;
  /** The JSON body, or null for none (204). */
  readonly body: unknown;
  /** The item's digest, sent as `ETag: "<sha256>"`. */
  readonly etag?: string;
}

export type Conditions =
  | { readonly ifMatch?: readonly string[] | '*'; readonly ifNoneMatch?: readonly string[] | '*' }
  | undefined;

export interface IdempotencyClaim {
  readonly key: string;
  /** A digest of what makes two requests "the same": method, item key, body, conditions. */
  readonly fingerprint: string;
}

interface WriteBase {
  readonly project: string;
  readonly key: string;
  readonly idempotency: IdempotencyClaim | undefined;
  readonly nowMs: number;
}

/** One change to apply. Every kind first honours an earlier answer kept for its Idempotency-Key. */
export type WriteRequest =
  | (WriteBase & {
      readonly kind: 'put';
      readonly body: StagedBody;
      readonly contentType: string;
      readonly conditions: Conditions;
    })
  | (WriteBase & { readonly kind: 'delete'; readonly conditions: Conditions })
  /** An answer decided before storage (a digest mismatch): only kept for replay. */
  | (WriteBase & { readonly kind: 'answer'; readonly answer: StoredAnswer });

export interface WriteOutcome {
  readonly answer: StoredAnswer;
  /** True when the answer is the one kept from an earlier request with the same Idempotency-Key. */
  readonly replayed: boolean;
}

export interface ItemMeta {
  readonly key: string;
  readonly size: number;
  readonly sha256: string;
  readonly version: number;
  readonly contentType: string;
}

export interface ListOptions {
  readonly after: string | undefined;
  readonly prefix: string | undefined;
  readonly limit: number;
}

export interface ListPage {
  readonly items: { key: string; size: number; sha256: string; version: number }[];
  readonly next: string | null;
}

export interface StageOptions {
  /** Refuse (throw BodyTooLargeError) once the body passes this many bytes. */
  readonly maxBytes: number;
  readonly signal?: AbortSignal;
}

/**
 * Where the server keeps items, their bodies and the answers kept for
 * idempotency. SQLite plus files is the one implementation today; the shape is
 * chosen so PostgreSQL (`--data postgres://...`) can follow.
 *
 * The contract:
 * - `write` is atomic per request: the item change and the kept answer commit
 *   together, and the promise settles only once they are durable. Conditions
 *   (If-Match, If-None-Match) are checked inside the same transaction.
 * - A repeat of a kept Idempotency-Key (per project, younger than 24 h) with the
 *   same fingerprint replays the kept answer; with another fingerprint it is
 *   answered 422 IDEMPOTENCY_KEY_REUSED. Only 2xx and 4xx other than 408 and
 *   429 are kept.
 * - Keys sort in the byte order of their UTF-8 encoding; `list` pages by key,
 *   so a key written while a client pages appears at most once.
 *
 * Left out: waiting for a repeat that is still in progress (the server does
 * that in memory, see IdempotencyGate), auth, and limits other than body size.
 */
export interface ServerStorage {
  /** Streams a body to storage, hashing it on the way; memory use does not grow with its size. */
  stage(
    source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    options: StageOptions,
  ): Promise<StagedBody>;
  /** Stages a body already in memory (batch items). */
  stageBuffer(body: Uint8Array): Promise<StagedBody>;
  /** Forgets a staged body that no write will use. */
  discard(body: StagedBody): void;
  write(request: WriteRequest): Promise<WriteOutcome>;
  stat(project: string, key: string): Promise<ItemMeta | undefined>;
  /** The item and a stream of its body, taken together so the two always match. */
  read(project: string, key: string): Promise<{ meta: ItemMeta; body: Readable } | undefined>;
  list(project: string, options: ListOptions): Promise<ListPage>;
  /** Counts of stored items, for metrics. */
  countItems(): Promise<number>;
  /** Waits for writes in progress, then releases files and connections. */
  close(): Promise<void>;
}

/** Thrown by `stage` when a body passes `maxBytes`. */
export class BodyTooLargeError extends Error {
  readonly maxBytes: number;
  constructor(maxBytes: number) {
    super(`the body is over the limit of ${maxBytes} bytes`);
    this.name = 'BodyTooLargeError';
    this.maxBytes = maxBytes;
  }
}

/** Answers kept for idempotent replay: final ones only. */
export function isKeptStatus(status: number): boolean {
  return (
    (status >= 200 && status < 300) ||
    (status >= 400 && status < 500 && status !== 408 && status !== 429)
  );
}

export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;
