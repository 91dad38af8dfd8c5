import { ClosedError, HttpError, ProtocolError } from '../errors/upsync-error.ts';
import { keyProblem } from '../keys/key-problem.ts';
import { classifyStatus } from '../retry/classify.ts';
import { DEFAULT_MAX_RETRY_AFTER_MS, parseRetryAfter } from '../retry/retry-after.ts';
import { systemClock, type Clock } from '../time/clock.ts';
import { assertInRange, assertInteger, assertNonNegative } from '../validate.ts';
import { bytesToBase64, hexToBytes } from './base64.ts';
import {
  describeUrl,
  type HttpRequest,
  type HttpResponse,
  type HttpTransport,
} from './http/http-transport.ts';
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

export const DEFAULT_PAGE_SIZE = 1000;
export const MAX_BATCH_ITEMS = 1000;
export const MAX_BATCH_BYTES = 8 * 1024 * 1024;

export interface UpsyncHttpRemoteOptions {
  /** The server's base URL, e.g. `https://sync.example.com`; paths start with /v1 under it. */
  url: string;
  /** 1 to 128 characters of `A-Z a-z 0-9 . _ -`. */
  project: string;
  /** Usually composeTransport(base, { auth, ... }): retries, limits and auth live there. */
  transport: HttpTransport;
  /** For HTTP-date Retry-After values. Default the system clock. */
  clock?: Clock;
  /** The cap on a Retry-After reported in an HttpError. Default 300_000. */
  maxRetryAfterMs?: number;
  /** Items per listing page, 1 to 10000. Default 1000. */
  pageSize?: number;
  /** Items per batch request, 1 to 1000. Default 1000 (the protocol's limit). */
  maxBatchItems?: number;
  /** Bytes per batch request. Default 8 MiB (the protocol's limit). */
  maxBatchBytes?: number;
  /** Called once by close(), e.g. to close the transport's connection pool. */
  onClose?: () => void | Promise<void>;
}

const PROJECT_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;
const QUOTED_SHA256 = /^"([0-9a-f]{64})"$/;
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;
const BATCH_ENVELOPE_BYTES = '{"items":[]}'.length;
const encoder = new TextEncoder();

function show(value: unknown): string {
  const text = typeof value === 'string' ? JSON.stringify(value) : String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** An ETag as a header value: quoted, unless it already is (or is `*` or weak). */
function headerEtag(etag: string): string {
  return etag === '*' || etag.startsWith('"') || etag.startsWith('W/') ? etag : `"${etag}"`;
}

/**
 * The Remote for the upsync HTTP protocol (shared/PROTOCOL.md, version 1) over
 * any HttpTransport. It builds requests and checks answers; retrying, pacing,
 * timeouts and auth are the transport's middleware.
 */
export class UpsyncHttpRemote implements Remote {
  readonly id: string;
  readonly #base: string;
  readonly #project: string;
  readonly #transport: HttpTransport;
  readonly #clock: Clock;
  readonly #maxRetryAfterMs: number;
  readonly #pageSize: number;
  readonly #maxBatchItems: number;
  readonly #maxBatchBytes: number;
  readonly #onClose: (() => void | Promise<void>) | undefined;
  #closed = false;

  constructor(options: UpsyncHttpRemoteOptions) {
    let url: URL;
    try {
      url = new URL(options.url);
    } catch {
      throw new TypeError(`url must be an absolute http(s) URL, got ${show(options.url)}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new TypeError(`url must be an http(s) URL, got ${show(describeUrl(options.url))}`);
    }
    if (url.username !== '' || url.password !== '') {
      // Shown without the credentials, which may be real.
      throw new TypeError(
        `url must not hold credentials (pass a token to the auth middleware), got ${show(describeUrl(options.url))}`,
      );
    }
    if (typeof options.project !== 'string' || !PROJECT_PATTERN.test(options.project)) {
      throw new TypeError(
        `project must be 1 to 128 characters of A-Z a-z 0-9 . _ -, got ${show(options.project)}`,
      );
    }
    if (typeof options.transport !== 'function') {
      throw new TypeError(
        `transport must be an HttpTransport function, got ${show(options.transport)}`,
      );
    }
    const pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
    assertInteger('pageSize', pageSize, 1);
    assertInRange('pageSize', pageSize, 1, 10_000);
    const maxBatchItems = options.maxBatchItems ?? MAX_BATCH_ITEMS;
    assertInteger('maxBatchItems', maxBatchItems, 1);
    assertInRange('maxBatchItems', maxBatchItems, 1, MAX_BATCH_ITEMS);
    const maxBatchBytes = options.maxBatchBytes ?? MAX_BATCH_BYTES;
    assertInteger('maxBatchBytes', maxBatchBytes, BATCH_ENVELOPE_BYTES + 1);
    assertInRange('maxBatchBytes', maxBatchBytes, 0, MAX_BATCH_BYTES);
    const maxRetryAfterMs = options.maxRetryAfterMs ?? DEFAULT_MAX_RETRY_AFTER_MS;
    assertNonNegative('maxRetryAfterMs', maxRetryAfterMs);

    this.#base = `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
    this.#project = options.project;
    this.id = `${this.#base}/v1/projects/${encodeURIComponent(options.project)}`;
    this.#transport = options.transport;
    this.#clock = options.clock ?? systemClock;
    this.#maxRetryAfterMs = maxRetryAfterMs;
    this.#pageSize = pageSize;
    this.#maxBatchItems = maxBatchItems;
    this.#maxBatchBytes = maxBatchBytes;
    this.#onClose = options.onClose;
  }

  async *list(options: RemoteListOptions = {}): AsyncGenerator<RemoteItemState> {
    const { prefix, signal } = options;
    let after: string | undefined;
    for (let page = 1; ; page++) {
      this.#check(signal);
      const query = new URLSearchParams({ limit: String(this.#pageSize) });
      if (after !== undefined) query.set('after', after);
      if (prefix !== undefined && prefix !== '') query.set('prefix', prefix);
      const url = `${this.id}/items?${query.toString()}`;
      const what = `listing page ${page} of project ${this.#project}`;
      const response = await this.#send(
        { method: 'GET', url, headers: { accept: 'application/json' } },
        signal,
      );
      if (response.status !== 200) throw await this.#fail(response, what);
      const body = await response.json();
      const { items, next } = this.#checkPage(body, what);
      if (next !== null && (next === after || items.length === 0)) {
        throw new ProtocolError(`${what}: "next" is ${show(next)} but the page does not move on`);
      }
      yield* items;
      if (next === null) return;
      after = next;
    }
  }

  async stat(key: string, options: RemoteCallOptions = {}): Promise<RemoteItemState | null> {
    this.#check(options.signal);
    const url = this.#itemUrl(key);
    const response = await this.#send({ method: 'HEAD', url, headers: {} }, options.signal);
    const what = `HEAD of ${show(key)}`;
    if (response.status === 404) {
      await response.dump();
      return null;
    }
    if (response.status !== 200) throw await this.#fail(response, what);
    await response.dump();
    const sizeText = response.headers['content-length'];
    if (sizeText === undefined || !/^\d+$/.test(sizeText)) {
      throw new ProtocolError(
        `${what}: Content-Length must be a whole number, got ${show(sizeText)}`,
      );
    }
    const etag = response.headers.etag;
    const digest = etag === undefined ? undefined : QUOTED_SHA256.exec(etag)?.[1];
    if (etag === undefined || digest === undefined) {
      throw new ProtocolError(
        `${what}: ETag must be a quoted SHA-256 hex digest, got ${show(etag)}`,
      );
    }
    const versionText = response.headers['upsync-version'];
    const version =
      versionText !== undefined && /^\d+$/.test(versionText) ? Number(versionText) : undefined;
    const contentType = response.headers['content-type'];
    return {
      key,
      size: Number(sizeText),
      digest,
      etag,
      ...(version === undefined ? {} : { version }),
      ...(contentType === undefined ? {} : { contentType }),
    };
  }

  async put(request: RemotePutRequest, options: RemoteCallOptions = {}): Promise<RemotePutResult> {
    this.#check(options.signal);
    const { key, body } = this.#checkPut(request);
    const headers: Record<string, string> = {
      'content-type': request.contentType ?? body.contentType ?? 'application/octet-stream',
      'content-length': String(body.size),
      'content-digest': `sha-256=:${bytesToBase64(hexToBytes(body.digest))}:`,
      'idempotency-key': request.idempotencyKey,
      accept: 'application/json',
    };
    if (request.ifMatch !== undefined) headers['if-match'] = headerEtag(request.ifMatch);
    if (request.ifNoneMatch !== undefined)
      headers['if-none-match'] = headerEtag(request.ifNoneMatch);
    const what = `PUT of ${show(key)}`;
    const response = await this.#send(
      { method: 'PUT', url: this.#itemUrl(key), headers, body: () => body.open() },
      options.signal,
    );
    if (response.status !== 200 && response.status !== 201) throw await this.#fail(response, what);
    const answer = await response.json();
    if (!isRecord(answer))
      throw new ProtocolError(`${what}: the answer must be a JSON object, got ${show(answer)}`);
    const sha256 = answer.sha256;
    if (typeof sha256 !== 'string' || !SHA256_HEX.test(sha256)) {
      throw new ProtocolError(
        `${what}: "sha256" must be 64 lowercase hex characters, got ${show(sha256)}`,
      );
    }
    const size = answer.size;
    if (typeof size !== 'number' || !Number.isInteger(size) || size < 0) {
      throw new ProtocolError(`${what}: "size" must be a whole number, got ${show(size)}`);
    }
    const version = answer.version;
    if (version !== undefined && (typeof version !== 'number' || !Number.isInteger(version))) {
      throw new ProtocolError(`${what}: "version" must be an integer, got ${show(version)}`);
    }
    if (sha256 !== body.digest) {
      // The server checked our Content-Digest, so this is a server that did not.
      throw new ProtocolError(
        `${what}: the server stored digest ${sha256}, not the ${body.digest} sent`,
      );
    }
    const etag = response.headers.etag ?? `"${sha256}"`;
    return {
      created: response.status === 201,
      unchanged: answer.unchanged === true,
      size,
      digest: sha256,
      etag,
      ...(version === undefined ? {} : { version }),
    };
  }

  async delete(
    key: string,
    options: RemoteCallOptions & { readonly idempotencyKey: string },
  ): Promise<RemoteDeleteResult> {
    this.#check(options.signal);
    const problem = keyProblem(key);
    if (problem) throw this.#badKey(key, problem);
    this.#checkIdempotencyKey(options.idempotencyKey);
    const response = await this.#send(
      {
        method: 'DELETE',
        url: this.#itemUrl(key),
        headers: { 'idempotency-key': options.idempotencyKey },
      },
      options.signal,
    );
    if (response.status === 404) {
      await response.dump();
      return { existed: false };
    }
    if (response.status !== 204 && response.status !== 200) {
      throw await this.#fail(response, `DELETE of ${show(key)}`);
    }
    await response.dump();
    return { existed: true };
  }

  async putBatch(
    items: readonly RemotePutRequest[],
    options: RemoteCallOptions = {},
  ): Promise<RemoteBatchResult[]> {
    this.#check(options.signal);
    const given: unknown = items;
    if (!Array.isArray(given)) throw new TypeError(`items must be an array, got ${show(given)}`);
    const results: RemoteBatchResult[] = new Array<RemoteBatchResult>(items.length);
    const alone: number[] = [];
    let chunk: { index: number; entry: string }[] = [];
    let chunkBytes = BATCH_ENVELOPE_BYTES;

    const flush = async (): Promise<void> => {
      if (chunk.length === 0) return;
      const sent = chunk;
      chunk = [];
      chunkBytes = BATCH_ENVELOPE_BYTES;
      await this.#sendBatch(sent, items, results, options.signal);
    };

    for (const [index, request] of items.entries()) {
      const { key, body } = this.#checkPut(request);
      const fields = {
        key,
        body: '',
        contentType: request.contentType ?? body.contentType ?? 'application/octet-stream',
        idempotencyKey: request.idempotencyKey,
      };
      const entryBytes =
        encoder.encode(JSON.stringify(fields)).length + 4 * Math.ceil(body.size / 3);
      // The batch format has no conditions, and a body too big for any batch goes alone.
      if (
        request.ifMatch !== undefined ||
        request.ifNoneMatch !== undefined ||
        BATCH_ENVELOPE_BYTES + entryBytes > this.#maxBatchBytes
      ) {
        alone.push(index);
        continue;
      }
      if (
        chunk.length >= this.#maxBatchItems ||
        chunkBytes + entryBytes + 1 > this.#maxBatchBytes
      ) {
        await flush();
      }
      const bytes = await readAll(body.open(), options.signal);
      if (bytes.byteLength !== body.size) {
        results[index] = {
          key,
          ok: false,
          error: this.#changedWhileRead(key, `${bytes.byteLength} bytes, not ${body.size}`),
        };
        continue;
      }
      const entry = JSON.stringify({ ...fields, body: bytesToBase64(bytes) });
      chunk.push({ index, entry });
      chunkBytes += encoder.encode(entry).length + (chunk.length > 1 ? 1 : 0);
    }
    await flush();
    for (const index of alone) {
      const request = items[index]!;
      try {
        results[index] = { key: request.key, ok: true, result: await this.put(request, options) };
      } catch (error) {
        if (!(error instanceof HttpError) || options.signal?.aborted) throw error;
        results[index] = { key: request.key, ok: false, error };
      }
    }
    return results;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#onClose?.();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #sendBatch(
    chunk: readonly { index: number; entry: string }[],
    items: readonly RemotePutRequest[],
    results: RemoteBatchResult[],
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const bytes = encoder.encode(`{"items":[${chunk.map((c) => c.entry).join(',')}]}`);
    const what = `batch of ${chunk.length} items`;
    const response = await this.#send(
      {
        method: 'POST',
        url: `${this.id}/batch`,
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: bytes,
        // Every item carries its Idempotency-Key, so sending the batch again applies nothing twice.
        idempotent: true,
      },
      signal,
    );
    if (response.status !== 200) throw await this.#fail(response, what);
    const answer = await response.json();
    const list = isRecord(answer) ? answer.results : undefined;
    if (!Array.isArray(list)) {
      throw new ProtocolError(
        `${what}: the answer must be {"results": [...]}, got ${show(answer)}`,
      );
    }
    if (list.length !== chunk.length) {
      throw new ProtocolError(
        `${what}: "results" has ${list.length} entries, expected ${chunk.length}`,
      );
    }
    for (const [i, raw] of list.entries()) {
      const { index } = chunk[i]!;
      const request = items[index]!;
      const field = `results[${i}]`;
      if (!isRecord(raw))
        throw new ProtocolError(`${what}: ${field} must be an object, got ${show(raw)}`);
      if (raw.key !== request.key) {
        throw new ProtocolError(
          `${what}: ${field}.key is ${show(raw.key)}, expected ${show(request.key)}`,
        );
      }
      const status = raw.status;
      if (typeof status !== 'number' || !Number.isInteger(status) || status < 100 || status > 599) {
        throw new ProtocolError(
          `${what}: ${field}.status must be an HTTP status, got ${show(status)}`,
        );
      }
      if (status === 200 || status === 201) {
        const sha256 = raw.sha256;
        if (typeof sha256 !== 'string' || !SHA256_HEX.test(sha256)) {
          throw new ProtocolError(
            `${what}: ${field}.sha256 must be 64 lowercase hex characters, got ${show(sha256)}`,
          );
        }
        const version = raw.version;
        if (
          version !== undefined &&
          version !== null &&
          (typeof version !== 'number' || !Number.isInteger(version))
        ) {
          throw new ProtocolError(
            `${what}: ${field}.version must be an integer, got ${show(version)}`,
          );
        }
        if (sha256 !== request.body.digest) {
          results[index] = {
            key: request.key,
            ok: false,
            error: this.#changedWhileRead(
              request.key,
              `digest ${sha256}, not ${request.body.digest}`,
            ),
          };
          continue;
        }
        results[index] = {
          key: request.key,
          ok: true,
          result: {
            created: status === 201,
            unchanged: raw.unchanged === true,
            size: request.body.size,
            digest: sha256,
            etag: `"${sha256}"`,
            ...(typeof version === 'number' ? { version } : {}),
          },
        };
        continue;
      }
      const error = isRecord(raw.error) ? raw.error : {};
      const serverCode = typeof error.code === 'string' ? error.code : undefined;
      const message = typeof error.message === 'string' ? error.message : undefined;
      results[index] = {
        key: request.key,
        ok: false,
        error: this.#httpError(
          status,
          `batch item ${show(request.key)}`,
          serverCode,
          message,
          undefined,
        ),
      };
    }
  }

  /** A local stand-in for the server's DIGEST_MISMATCH: the source changed while it was read. */
  #changedWhileRead(key: string, detail: string): HttpError {
    return new HttpError(
      400,
      `batch item ${show(key)}: the body read differs from the version (${detail}); it changed while it was read`,
      {
        serverCode: 'DIGEST_MISMATCH',
        retryable: false,
      },
    );
  }

  #check(signal: AbortSignal | undefined): void {
    signal?.throwIfAborted();
    if (this.#closed) throw new ClosedError(`the remote ${this.id} is closed`);
  }

  #checkIdempotencyKey(value: unknown): void {
    if (typeof value !== 'string' || !IDEMPOTENCY_KEY.test(value)) {
      throw new TypeError(
        `idempotencyKey must be 1 to 255 visible ASCII characters, got ${show(value)}`,
      );
    }
  }

  #checkPut(request: RemotePutRequest): RemotePutRequest {
    if (!isRecord(request))
      throw new TypeError(`a put request must be an object, got ${show(request)}`);
    const problem = keyProblem(request.key);
    if (problem) throw this.#badKey(request.key, problem);
    const body = request.body as Partial<RemotePutRequest['body']> | undefined;
    if (!isRecord(body) || typeof body.open !== 'function') {
      throw new TypeError(`body of ${show(request.key)} must have open(), got ${show(body)}`);
    }
    assertInteger('body.size', body.size);
    if (typeof body.digest !== 'string' || !SHA256_HEX.test(body.digest)) {
      throw new TypeError(
        `body.digest must be 64 lowercase hex characters, got ${show(body.digest)}`,
      );
    }
    this.#checkIdempotencyKey(request.idempotencyKey);
    return request;
  }

  /**
   * A key the protocol refuses fails here as the server would fail it (400
   * BAD_KEY), so the engine treats it the same; sending it could be worse than
   * a refusal, as URL parsers resolve "." and ".." segments to another item.
   */
  #badKey(key: unknown, problem: string): HttpError {
    return new HttpError(400, `${problem}: ${show(key)} (refused before sending)`, {
      serverCode: 'BAD_KEY',
      retryable: false,
    });
  }

  #itemUrl(key: string): string {
    const problem = keyProblem(key);
    if (problem) throw this.#badKey(key, problem);
    return `${this.id}/items/${key.split('/').map(encodeURIComponent).join('/')}`;
  }

  #send(
    request: Omit<HttpRequest, 'signal'>,
    signal: AbortSignal | undefined,
  ): Promise<HttpResponse> {
    return this.#transport(signal ? { ...request, signal } : request);
  }

  async #fail(response: HttpResponse, what: string): Promise<HttpError> {
    let text = '';
    try {
      text = await response.text();
    } catch {
      // The status says enough; a body that cannot be read adds nothing.
    }
    let serverCode: string | undefined;
    let message: string | undefined;
    try {
      const parsed: unknown = JSON.parse(text);
      const error = isRecord(parsed) && isRecord(parsed.error) ? parsed.error : undefined;
      if (typeof error?.code === 'string') serverCode = error.code;
      if (typeof error?.message === 'string') message = error.message;
    } catch {
      // Not the protocol's JSON error (a proxy's HTML page): the status stands alone.
    }
    const retryAfterMs = parseRetryAfter(response.headers['retry-after'], {
      nowMs: this.#clock.now(),
      maxMs: this.#maxRetryAfterMs,
    });
    return this.#httpError(response.status, what, serverCode, message, retryAfterMs);
  }

  #httpError(
    status: number,
    what: string,
    serverCode: string | undefined,
    message: string | undefined,
    retryAfterMs: number | undefined,
  ): HttpError {
    const detail = [serverCode, message === undefined ? undefined : message.slice(0, 200)]
      .filter((part) => part !== undefined)
      .join(': ');
    return new HttpError(
      status,
      `${what} in project ${this.#project}: ${status}${detail ? ` ${detail}` : ''}`,
      {
        retryable: classifyStatus(status).action === 'retry',
        ...(serverCode === undefined ? {} : { serverCode }),
        ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      },
    );
  }

  #checkPage(body: unknown, what: string): { items: RemoteItemState[]; next: string | null } {
    if (!isRecord(body))
      throw new ProtocolError(`${what}: the answer must be a JSON object, got ${show(body)}`);
    const { items, next } = body;
    if (!Array.isArray(items))
      throw new ProtocolError(`${what}: "items" must be an array, got ${show(items)}`);
    if (next !== null && typeof next !== 'string') {
      throw new ProtocolError(`${what}: "next" must be a string or null, got ${show(next)}`);
    }
    const states = items.map((raw: unknown, i): RemoteItemState => {
      const field = `items[${i}]`;
      if (!isRecord(raw))
        throw new ProtocolError(`${what}: ${field} must be an object, got ${show(raw)}`);
      const { key, size, sha256, version } = raw;
      if (typeof key !== 'string' || key === '') {
        throw new ProtocolError(
          `${what}: ${field}.key must be a non-empty string, got ${show(key)}`,
        );
      }
      if (typeof size !== 'number' || !Number.isInteger(size) || size < 0) {
        throw new ProtocolError(`${what}: ${field}.size must be a whole number, got ${show(size)}`);
      }
      if (typeof sha256 !== 'string' || !SHA256_HEX.test(sha256)) {
        throw new ProtocolError(
          `${what}: ${field}.sha256 must be 64 lowercase hex characters, got ${show(sha256)}`,
        );
      }
      if (version !== undefined && (typeof version !== 'number' || !Number.isInteger(version))) {
        throw new ProtocolError(
          `${what}: ${field}.version must be an integer, got ${show(version)}`,
        );
      }
      return {
        key,
        size,
        digest: sha256,
        etag: `"${sha256}"`,
        ...(version === undefined ? {} : { version }),
      };
    });
    return { items: states, next };
  }
}

async function readAll(
  source: AsyncIterable<Uint8Array>,
  signal: AbortSignal | undefined,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of source) {
    signal?.throwIfAborted();
    chunks.push(chunk);
    size += chunk.byteLength;
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}
