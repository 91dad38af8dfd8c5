import type { HttpError } from '../errors/upsync-error.ts';

/**
 * The content of one version. `open()` is called once per attempt, so a retry
 * reads the body again from its source (a file, a stored blob) instead of
 * keeping it in memory.
 */
export interface RemoteBody {
  /** Bytes `open()` yields. */
  readonly size: number;
  /** SHA-256 of those bytes, 64 lowercase hex characters. */
  readonly digest: string;
  readonly contentType?: string;
  open(): AsyncIterable<Uint8Array>;
}

/** What the remote holds for one key: from a listing or a stat. */
export interface RemoteItemState {
  readonly key: string;
  readonly size: number;
  /** SHA-256 hex, where the remote tells it (WebDAV does not). */
  readonly digest?: string;
  /** The validator to send as If-Match. */
  readonly etag?: string;
  /** Last modification, epoch ms, where the remote tells it. */
  readonly modifiedMs?: number;
  /** The remote's version counter, where it has one. */
  readonly version?: number;
  readonly contentType?: string;
}

export interface RemotePutRequest {
  readonly key: string;
  readonly body: RemoteBody;
  /** Default the body's, else application/octet-stream. */
  readonly contentType?: string;
  /** The version's key, reused by every retry, so a repeat is never applied twice. */
  readonly idempotencyKey: string;
  /** Only replace this exact state (an ETag as the remote gave it). */
  readonly ifMatch?: string;
  /** `*`: only create. */
  readonly ifNoneMatch?: string;
}

export interface RemotePutResult {
  /** The key did not exist before. */
  readonly created: boolean;
  /** The remote already held exactly this content; nothing changed. */
  readonly unchanged: boolean;
  readonly size: number;
  readonly digest: string;
  readonly etag: string;
  readonly version?: number;
}

export interface RemoteDeleteResult {
  /** False when the key was already absent (a 404, which counts as done). */
  readonly existed: boolean;
}

/** The outcome of one item of a batch, in the order the items were given. */
export type RemoteBatchResult =
  | { readonly key: string; readonly ok: true; readonly result: RemotePutResult }
  | { readonly key: string; readonly ok: false; readonly error: HttpError };

export interface RemoteCallOptions {
  readonly signal?: AbortSignal;
}

export interface RemoteListOptions extends RemoteCallOptions {
  /** Only keys starting with this. */
  readonly prefix?: string;
}

/**
 * Where items go (shared/DESIGN.md "The pieces: Remote"). Every call rejects
 * with `signal.reason` when its signal aborts; a call that fails otherwise
 * rejects with an UpsyncError (HttpError with the status and the server's
 * code, NetworkError, TimeoutError, ProtocolError, CircuitOpenError) that core's
 * classifier understands.
 *
 * What the contract leaves out, on purpose:
 * - Retries, pacing, timeouts and auth refresh: those belong to the transport
 *   (HTTP middleware), so a Remote may retry inside a call or not at all; the
 *   engine's own retry schedule sits above either way.
 * - Atomicity across items: `putBatch` applies each item on its own, and a
 *   listing is not a snapshot (a key written while paging appears at most once).
 * - Ordering and concurrency between calls: callers do not run two writes of one
 *   key at once; a Remote need not serialise them.
 * - Reading content back: there is no get(); upsync only pushes.
 * - Which errors dead-letter an item, and what a 401 or 404 on the project
 *   means for the run: that is the engine's decision, from the error's status.
 * - Whether `digest` is present in a listing: a remote that cannot tell it
 *   (WebDAV) gives size and date, and the engine decides from its synced table.
 */
export interface Remote {
  /**
   * A non-secret identity of the target, stable across runs, that scopes the
   * outbox: the URL without credentials, query or fragment, and the project.
   */
  readonly id: string;
  /** Every item (all pages), in the remote's order. */
  list(options?: RemoteListOptions): AsyncIterable<RemoteItemState>;
  /** One item's state, or null when it is absent. */
  stat(key: string, options?: RemoteCallOptions): Promise<RemoteItemState | null>;
  put(request: RemotePutRequest, options?: RemoteCallOptions): Promise<RemotePutResult>;
  delete(
    key: string,
    options: RemoteCallOptions & { readonly idempotencyKey: string },
  ): Promise<RemoteDeleteResult>;
  /**
   * Writes several items in as few requests as the remote allows; one result
   * per item, in order. A refusal of the whole request (401, 503 after retries)
   * rejects instead.
   */
  putBatch?(
    items: readonly RemotePutRequest[],
    options?: RemoteCallOptions,
  ): Promise<RemoteBatchResult[]>;
  /** Creates the folders above `key` (WebDAV's MKCOL), for remotes that need them. */
  ensureParent?(key: string, options?: RemoteCallOptions): Promise<void>;
  /** Refuses further calls; releases what the remote owns. */
  close(): Promise<void>;
}
