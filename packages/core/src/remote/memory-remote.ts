import { ClosedError, HttpError } from '../errors/upsync-error.ts';
import { compareKeys } from '../keys/compare-keys.ts';
import { sha256HexSync } from './sha256-sync.ts';
import type {
  Remote,
  RemoteBatchResult,
  RemoteCallOptions,
  RemoteDeleteResult,
  RemoteItemState,
  RemoteListOptions,
  RemotePutRequest,
  RemotePutResult,
} from './remote.ts';

/** `BATCH` is a putBatch request as a whole; each of its items is also a `PUT` call. */
export type MemoryRemoteMethod = 'LIST' | 'HEAD' | 'PUT' | 'DELETE' | 'BATCH';

/** One call as the remote saw it (failed ones included). */
export interface MemoryRemoteCall {
  readonly method: MemoryRemoteMethod;
  readonly key: string | null;
  readonly idempotencyKey: string | null;
  /** 1 for the first call of this method on this key, counting failures. */
  readonly nth: number;
  /** An item of a putBatch request. */
  readonly batched: boolean;
}

/** A change the remote applied (replays and refusals are not). */
export interface AppliedChange {
  readonly key: string;
  readonly kind: 'put' | 'delete';
  readonly digest: string | null;
  readonly idempotencyKey: string;
  readonly text: string | null;
}

/** Returns the error a call fails with, or undefined to let it through. */
export type FailureRule = (call: MemoryRemoteCall) => Error | undefined;

export interface MemoryRemoteOptions {
  id?: string;
  /** Whether the listing gives digests; false gives sizes only, as WebDAV does. Default true. */
  listDigests?: boolean;
}

interface StoredItem {
  readonly bytes: Uint8Array;
  readonly digest: string;
  readonly version: number;
  readonly contentType: string;
}

interface Answered {
  readonly fingerprint: string;
  readonly result: RemotePutResult | RemoteDeleteResult;
}

const decoder = new TextDecoder();

/**
 * An in-memory Remote with the upsync protocol's semantics (shared/PROTOCOL.md):
 * SHA-256 digests checked against the body, idempotency replay per key (a
 * repeat changes nothing; the same key on another request is 422), PUT of the
 * stored content answered `unchanged`, DELETE of an absent item answered as
 * not existing (the HTTP 404 that counts as done). Failures are injected per
 * call, so engine tests can script 429s, 5xx, 401s and refusals.
 */
export class MemoryRemote implements Remote {
  readonly id: string;
  readonly calls: MemoryRemoteCall[] = [];
  readonly applied: AppliedChange[] = [];
  readonly #items = new Map<string, StoredItem>();
  readonly #answered = new Map<string, Answered>();
  readonly #counts = new Map<string, number>();
  readonly #rules = new Set<FailureRule>();
  readonly #listDigests: boolean;
  #closed = false;

  constructor(options: MemoryRemoteOptions = {}) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(`options must be an object, got ${String(options)}`);
    }
    this.id = options.id ?? 'memory://remote';
    this.#listDigests = options.listDigests ?? true;
  }

  /** Adds a failure rule; returns the function that removes it. */
  inject(rule: FailureRule): () => void {
    if (typeof rule !== 'function')
      throw new TypeError(`rule must be a function, got ${String(rule)}`);
    this.#rules.add(rule);
    return () => this.#rules.delete(rule);
  }

  /** Fails the next `times` calls of `method` (on `key`, if given) with `error()`. */
  failNext(
    method: MemoryRemoteMethod,
    error: () => Error,
    options: { key?: string; times?: number } = {},
  ): () => void {
    let left = options.times ?? 1;
    const off = this.inject((call) => {
      if (left <= 0 || call.method !== method) return undefined;
      if (options.key !== undefined && call.key !== options.key) return undefined;
      left--;
      if (left === 0) off();
      return error();
    });
    return off;
  }

  /** The stored content of `key` as text, or undefined when absent. */
  text(key: string): string | undefined {
    const item = this.#items.get(key);
    return item ? decoder.decode(item.bytes) : undefined;
  }

  keys(): string[] {
    return [...this.#items.keys()].sort(compareKeys);
  }

  /** Sets content directly, as if another client had written it. */
  seed(key: string, text: string): Promise<void> {
    const bytes = new TextEncoder().encode(text);
    const previous = this.#items.get(key);
    this.#items.set(key, {
      bytes,
      digest: sha256HexSync(bytes),
      version: (previous?.version ?? 0) + 1,
      contentType: 'text/plain',
    });
    return Promise.resolve();
  }

  callsOf(method: MemoryRemoteMethod, key?: string): MemoryRemoteCall[] {
    return this.calls.filter((c) => c.method === method && (key === undefined || c.key === key));
  }

  async *list(options: RemoteListOptions = {}): AsyncGenerator<RemoteItemState> {
    this.#call('LIST', null, null, options);
    await Promise.resolve();
    const prefix = options.prefix ?? '';
    for (const key of this.keys()) {
      const item = this.#items.get(key);
      if (!item || !key.startsWith(prefix)) continue;
      yield {
        key,
        size: item.bytes.byteLength,
        version: item.version,
        ...(this.#listDigests ? { digest: item.digest, etag: `"${item.digest}"` } : {}),
      };
    }
  }

  async stat(key: string, options: RemoteCallOptions = {}): Promise<RemoteItemState | null> {
    this.#call('HEAD', key, null, options);
    await Promise.resolve();
    const item = this.#items.get(key);
    if (!item) return null;
    return {
      key,
      size: item.bytes.byteLength,
      digest: item.digest,
      etag: `"${item.digest}"`,
      version: item.version,
      contentType: item.contentType,
    };
  }

  async put(request: RemotePutRequest, options: RemoteCallOptions = {}): Promise<RemotePutResult> {
    return this.#put(request, options, false);
  }

  /**
   * Each item as its own PUT (rules injected for `PUT` apply per item): an
   * HttpError is that item's result, any other error refuses the whole request,
   * as a transport failure would. Unlike the HTTP remote it never splits.
   */
  async putBatch(
    items: readonly RemotePutRequest[],
    options: RemoteCallOptions = {},
  ): Promise<RemoteBatchResult[]> {
    this.#call('BATCH', null, null, options);
    const results: RemoteBatchResult[] = [];
    for (const request of items) {
      try {
        results.push({
          key: request.key,
          ok: true,
          result: await this.#put(request, options, true),
        });
      } catch (error) {
        if (!(error instanceof HttpError)) throw error;
        results.push({ key: request.key, ok: false, error });
      }
    }
    return results;
  }

  async #put(
    request: RemotePutRequest,
    options: RemoteCallOptions,
    batched: boolean,
  ): Promise<RemotePutResult> {
    const { key, body, idempotencyKey } = request;
    this.#call('PUT', key, idempotencyKey, options, batched);
    const chunks: Uint8Array[] = [];
    for await (const chunk of body.open()) {
      options.signal?.throwIfAborted();
      chunks.push(chunk);
    }
    const bytes = concat(chunks);
    const digest = sha256HexSync(bytes);
    const fingerprint = `PUT ${key} ${body.digest}`;
    const replay = this.#replay(idempotencyKey, fingerprint);
    if (replay) return replay as RemotePutResult;
    if (digest !== body.digest || bytes.byteLength !== body.size) {
      throw new HttpError(
        400,
        `PUT of ${JSON.stringify(key)}: the body does not match its digest`,
        {
          serverCode: 'DIGEST_MISMATCH',
        },
      );
    }
    const previous = this.#items.get(key);
    let result: RemotePutResult;
    if (previous?.digest === digest) {
      result = {
        created: false,
        unchanged: true,
        size: bytes.byteLength,
        digest,
        etag: `"${digest}"`,
        version: previous.version,
      };
    } else {
      const version = (previous?.version ?? 0) + 1;
      this.#items.set(key, {
        bytes,
        digest,
        version,
        contentType: request.contentType ?? body.contentType ?? 'application/octet-stream',
      });
      this.applied.push({ key, kind: 'put', digest, idempotencyKey, text: decoder.decode(bytes) });
      result = {
        created: previous === undefined,
        unchanged: false,
        size: bytes.byteLength,
        digest,
        etag: `"${digest}"`,
        version,
      };
    }
    this.#answered.set(idempotencyKey, { fingerprint, result });
    return result;
  }

  async delete(
    key: string,
    options: RemoteCallOptions & { readonly idempotencyKey: string },
  ): Promise<RemoteDeleteResult> {
    this.#call('DELETE', key, options.idempotencyKey, options);
    await Promise.resolve();
    const fingerprint = `DELETE ${key}`;
    const replay = this.#replay(options.idempotencyKey, fingerprint);
    if (replay) return replay as RemoteDeleteResult;
    const existed = this.#items.delete(key);
    if (existed) {
      this.applied.push({
        key,
        kind: 'delete',
        digest: null,
        idempotencyKey: options.idempotencyKey,
        text: null,
      });
    }
    const result = { existed };
    this.#answered.set(options.idempotencyKey, { fingerprint, result });
    return result;
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }

  #replay(idempotencyKey: string, fingerprint: string): Answered['result'] | undefined {
    const answered = this.#answered.get(idempotencyKey);
    if (!answered) return undefined;
    if (answered.fingerprint !== fingerprint) {
      throw new HttpError(422, 'the Idempotency-Key was used for another request', {
        serverCode: 'IDEMPOTENCY_KEY_REUSED',
      });
    }
    return answered.result;
  }

  #call(
    method: MemoryRemoteMethod,
    key: string | null,
    idempotencyKey: string | null,
    options: RemoteCallOptions,
    batched = false,
  ): void {
    if (this.#closed) throw new ClosedError('the remote is closed');
    options.signal?.throwIfAborted();
    const counter = `${method} ${key ?? ''}`;
    const nth = (this.#counts.get(counter) ?? 0) + 1;
    this.#counts.set(counter, nth);
    const call: MemoryRemoteCall = { method, key, idempotencyKey, nth, batched };
    this.calls.push(call);
    for (const rule of [...this.#rules]) {
      const error = rule(call);
      if (error) throw error;
    }
  }
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  let size = 0;
  for (const chunk of chunks) size += chunk.byteLength;
  const out = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}
