import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { systemClock, type Clock } from '@upsync/core';
import { ApiError } from './api-error.ts';
import { FaultInjector } from './fault-injector.ts';
import { IdempotencyGate } from './idempotency-gate.ts';
import { checkKey, checkProject, parseItemKey } from './item-key.ts';
import { ServerMetrics } from './server-metrics.ts';
import {
  BodyTooLargeError,
  type Conditions,
  type IdempotencyClaim,
  type ServerStorage,
  type StagedBody,
  type WriteOutcome,
} from './storage.ts';
import type { Principal, TokenRegistry } from './token-registry.ts';

export interface UpsyncServerOptions {
  /** Where items live. The server closes it in `close()`. */
  storage: ServerStorage;
  tokens: TokenRegistry;
  /** The largest PUT body accepted; larger ones are answered 413. Default 64 MiB. */
  maxBodyBytes?: number;
  /** Fault injection, off unless given settings. */
  faults?: FaultInjector;
  /** Guards `/v1/admin/faults`; without it that route does not exist. */
  adminToken?: string;
  clock?: Clock;
  /** Receives one JSON line per request; null for no request log. */
  requestLog?: ((line: string) => void) | null;
  /** Unexpected errors (never request data or tokens). Default: stderr. */
  onError?: (error: unknown) => void;
}

export interface ListenOptions {
  port?: number;
  host?: string;
  signal?: AbortSignal;
}

const MAX_BATCH_ITEMS = 1000;
const MAX_BATCH_BYTES = 8 * 1024 * 1024;
const MAX_ADMIN_BYTES = 64 * 1024;
// Past this much unread body, a refused request's connection is closed instead of drained.
const DRAIN_LIMIT_BYTES = 1024 * 1024;
const idempotencyKeyPattern = /^[\x21-\x7e]{1,255}$/;
const itemPathPattern = /^\/v1\/projects\/([^/?]*)\/items\/([^?]*)/;
const base64Pattern = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

const jsonType = 'application/json; charset=utf-8';

/** Aborts when the client goes away before the answer is complete. */
function signalFor(response: ServerResponse): AbortSignal {
  const controller = new AbortController();
  response.once('close', () => {
    if (!response.writableFinished) controller.abort(new Error('the client went away'));
  });
  return controller.signal;
}

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** Parses an If-Match / If-None-Match value into '*' or the list of digests it names. */
function parseEtags(name: string, value: string | undefined): readonly string[] | '*' | undefined {
  if (value === undefined) return undefined;
  if (value.trim() === '*') return '*';
  const tags: string[] = [];
  for (const part of value.split(',')) {
    const match = /^\s*(W\/)?"([^"]*)"\s*$/.exec(part);
    if (!match)
      throw new ApiError(400, 'BAD_REQUEST', `${name} must be * or a list of quoted ETags`);
    // Weak tags never match: ETags here are strong digests.
    if (!match[1]) tags.push(match[2]!);
  }
  return tags;
}

function parseConditions(request: FastifyRequest): Conditions {
  const ifMatch = parseEtags('If-Match', header(request, 'if-match'));
  const ifNoneMatch = parseEtags('If-None-Match', header(request, 'if-none-match'));
  if (ifMatch === undefined && ifNoneMatch === undefined) return undefined;
  return {
    ...(ifMatch === undefined ? {} : { ifMatch }),
    ...(ifNoneMatch === undefined ? {} : { ifNoneMatch }),
  };
}

function parseIdempotencyKey(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!idempotencyKeyPattern.test(value)) {
    throw new ApiError(
      400,
      'BAD_IDEMPOTENCY_KEY',
      'Idempotency-Key must be 1 to 255 visible ASCII characters',
    );
  }
  return value;
}

/** The SHA-256 a Content-Digest header (RFC 9530) asks for, as hex; undefined if it names none. */
function parseContentDigest(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  for (const member of value.split(',')) {
    const match = /^\s*([A-Za-z0-9-]+)\s*=\s*:([A-Za-z0-9+/=]*):\s*$/.exec(member);
    if (!match) {
      throw new ApiError(400, 'BAD_DIGEST', 'Content-Digest must look like sha-256=:<base64>:');
    }
    if (match[1]!.toLowerCase() !== 'sha-256') continue;
    const bytes = Buffer.from(match[2]!, 'base64');
    if (bytes.length !== 32) {
      throw new ApiError(400, 'BAD_DIGEST', 'Content-Digest sha-256 must be 32 bytes in base64');
    }
    return bytes.toString('hex');
  }
  return undefined;
}

function fingerprint(parts: unknown[]): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

function declaredLength(request: FastifyRequest): number | undefined {
  const value = request.headers['content-length'];
  return value === undefined ? undefined : Number(value);
}

/** Reads a whole (small) body into memory, refusing it past `maxBytes`. */
async function readSmallBody(request: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw new BodyTooLargeError(maxBytes);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function digestOfSecret(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}

/**
 * The reference server: every route of the upsync HTTP protocol (shared/PROTOCOL.md)
 * on fastify, over a {@link ServerStorage}.
 */
export class UpsyncServer {
  readonly #storage: ServerStorage;
  readonly #tokens: TokenRegistry;
  readonly #maxBodyBytes: number;
  readonly #faults: FaultInjector;
  readonly #adminDigest: Buffer | undefined;
  readonly #clock: Clock;
  readonly #log: ((line: string) => void) | null;
  readonly #onError: (error: unknown) => void;
  readonly #gate = new IdempotencyGate();
  readonly #metrics = new ServerMetrics();
  readonly #app: FastifyInstance;
  readonly #bytesIn = new WeakMap<IncomingMessage, number>();
  #closing: Promise<void> | undefined;

  constructor(options: UpsyncServerOptions) {
    if (typeof options?.storage?.write !== 'function') {
      throw new TypeError(`storage must be a ServerStorage, got ${typeof options?.storage}`);
    }
    if (typeof options.tokens?.identify !== 'function') {
      throw new TypeError(`tokens must be a TokenRegistry, got ${typeof options.tokens}`);
    }
    const maxBodyBytes = options.maxBodyBytes ?? 64 * 1024 * 1024;
    if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes < 0) {
      throw new TypeError(`maxBodyBytes must be an integer >= 0, got ${String(maxBodyBytes)}`);
    }
    if (options.adminToken !== undefined && !/^[\x21-\x7e]{16,4096}$/.test(options.adminToken)) {
      // Never echo the value: it is a secret.
      throw new TypeError('adminToken must be 16 to 4096 visible ASCII characters');
    }
    this.#storage = options.storage;
    this.#tokens = options.tokens;
    this.#maxBodyBytes = maxBodyBytes;
    this.#clock = options.clock ?? systemClock;
    this.#faults = options.faults ?? new FaultInjector({ clock: this.#clock });
    this.#adminDigest =
      options.adminToken === undefined ? undefined : digestOfSecret(options.adminToken);
    this.#log = options.requestLog === undefined ? null : options.requestLog;
    this.#onError =
      options.onError ??
      ((error) =>
        process.stderr.write(`upsync server: ${String((error as Error)?.stack ?? error)}\n`));
    this.#app = this.#build();
  }

  get faults(): FaultInjector {
    return this.#faults;
  }

  /** Starts listening; resolves with the bound address. Port 0 picks a free port. */
  async listen(options: ListenOptions = {}): Promise<{ host: string; port: number; url: string }> {
    options.signal?.throwIfAborted();
    const host = options.host ?? '127.0.0.1';
    await this.#app.listen({
      port: options.port ?? 8787,
      host,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const address = this.#app.server.address() as AddressInfo;
    const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return {
      host: address.address,
      port: address.port,
      url: `http://${shownHost}:${address.port}`,
    };
  }

  /** Stops accepting, lets requests in flight finish, then closes the storage. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#app.close();
      await this.#storage.close();
    })();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #build(): FastifyInstance {
    const app = Fastify({
      logger: false,
      exposeHeadRoutes: false,
      return503OnClosing: true,
      // Keys are up to 1024 bytes, three times that once percent-encoded.
      routerOptions: { maxParamLength: 8192 },
      // Bad escapes in the path reach us here, before routing: answer them in the protocol's shape.
      frameworkErrors: (error, request, reply) => {
        const apiError =
          error.code === 'FST_ERR_BAD_URL' || error.code === 'FST_ERR_MAX_PARAM_LENGTH'
            ? new ApiError(400, 'BAD_KEY', 'the path is not a valid key (bad escape or too long)')
            : error;
        this.#sendError(request, reply, apiError);
      },
    });
    // Bodies are streamed by the handlers themselves, never buffered by the framework.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', (_request, _payload, done) => done(null, undefined));

    app.addHook('onResponse', (request, reply, done) => {
      this.#observe(request, reply);
      done();
    });
    app.setErrorHandler((error, request, reply) => this.#sendError(request, reply, error));
    app.setNotFoundHandler((request, reply) =>
      this.#sendError(request, reply, new ApiError(404, 'NOT_FOUND', 'no such route')),
    );

    app.get('/v1/health', (_request, reply) => this.#json(reply, 200, { ok: true }));
    app.get('/metrics', async (_request, reply) => {
      const text = this.#metrics.render(await this.#storage.countItems());
      return reply.code(200).type('text/plain; version=0.0.4; charset=utf-8').send(text);
    });
    app.get('/v1/admin/faults', (request, reply) => {
      this.#checkAdmin(request);
      return this.#json(reply, 200, this.#faults.settings);
    });
    app.put('/v1/admin/faults', async (request, reply) => {
      this.#checkAdmin(request);
      const text = (await readSmallBody(request.raw, MAX_ADMIN_BYTES)).toString('utf8');
      let patch: unknown;
      try {
        patch = JSON.parse(text);
        return this.#json(reply, 200, this.#faults.configure(patch));
      } catch (error) {
        throw new ApiError(400, 'BAD_REQUEST', (error as Error).message);
      }
    });
    app.delete('/v1/admin/faults', (request, reply) => {
      this.#checkAdmin(request);
      return this.#json(reply, 200, this.#faults.reset());
    });

    app.get('/v1/projects/:project/items', (request, reply) => this.#list(request, reply));
    app.post('/v1/projects/:project/batch', (request, reply) => this.#batch(request, reply));
    const item = '/v1/projects/:project/items/*';
    app.put(item, (request, reply) => this.#put(request, reply));
    app.get(item, (request, reply) => this.#get(request, reply, true));
    app.head(item, (request, reply) => this.#get(request, reply, false));
    app.delete(item, (request, reply) => this.#delete(request, reply));
    return app;
  }

  // ---- shared steps ------------------------------------------------------

  #json(
    reply: FastifyReply,
    status: number,
    body: unknown,
    headers: Readonly<Record<string, string>> = {},
  ): FastifyReply {
    const text = JSON.stringify(body);
    return reply.code(status).headers(headers).type(jsonType).send(text);
  }

  #sendError(request: FastifyRequest, reply: FastifyReply, error: unknown): FastifyReply {
    let apiError: ApiError;
    if (error instanceof ApiError) apiError = error;
    else if (error instanceof BodyTooLargeError) {
      apiError = new ApiError(413, 'PAYLOAD_TOO_LARGE', error.message);
    } else if (request.raw.destroyed || reply.raw.destroyed) {
      return reply;
    } else {
      this.#onError(error);
      apiError = new ApiError(500, 'INTERNAL', 'the server failed; it was logged');
    }
    if (apiError.status === 413) this.#closeIfLarge(request, reply);
    return this.#json(reply, apiError.status, apiError.toBody(), apiError.headers);
  }

  /** A refused body small enough is drained (keep-alive stays); a large one closes the connection. */
  #closeIfLarge(request: FastifyRequest, reply: FastifyReply): void {
    const declared = declaredLength(request);
    const read = this.#bytesIn.get(request.raw) ?? 0;
    if (declared === undefined || declared - read > DRAIN_LIMIT_BYTES) {
      reply.header('connection', 'close');
    }
  }

  #observe(request: FastifyRequest, reply: FastifyReply): void {
    const route = request.routeOptions?.url ?? 'unmatched';
    const bytesOut =
      request.method === 'HEAD' ? 0 : Number(reply.getHeader('content-length') ?? 0) || 0;
    const bytesIn = this.#bytesIn.get(request.raw) ?? 0;
    const durationMs = reply.elapsedTime;
    this.#metrics.observe({
      route,
      method: request.method,
      status: reply.statusCode,
      durationMs,
      bytesIn,
      bytesOut,
    });
    if (this.#log) {
      const url = request.raw.url ?? '';
      const query = url.indexOf('?');
      this.#log(
        JSON.stringify({
          time: new Date(this.#clock.now()).toISOString(),
          method: request.method,
          path: query === -1 ? url : url.slice(0, query),
          status: reply.statusCode,
          // Not a secret (a random id per version): lets a log show that a retry reused it.
          ...(typeof request.headers['idempotency-key'] === 'string'
            ? { idempotencyKey: request.headers['idempotency-key'] }
            : {}),
          durationMs: Math.round(durationMs * 1000) / 1000,
          bytesIn,
          bytesOut,
        }),
      );
    }
  }

  #checkAdmin(request: FastifyRequest): void {
    if (!this.#adminDigest) throw new ApiError(404, 'NOT_FOUND', 'no such route');
    const match = /^Bearer +(\S+)\s*$/i.exec(header(request, 'authorization') ?? '');
    const presented = digestOfSecret(match?.[1] ?? '');
    if (!match || !timingSafeEqual(presented, this.#adminDigest)) {
      throw new ApiError(401, 'UNAUTHORIZED', 'the admin token is required', {
        'www-authenticate': 'Bearer',
      });
    }
  }

  /**
   * Auth, then fault injection. Returns undefined when the connection was reset
   * on purpose and nothing more may be sent.
   */
  async #enter(
    request: FastifyRequest,
    reply: FastifyReply,
    project: string,
    signal: AbortSignal,
  ): Promise<Principal | undefined> {
    const principal = this.#tokens.identify(header(request, 'authorization'));
    if (!principal) {
      throw new ApiError(401, 'UNAUTHORIZED', 'a valid bearer token is required', {
        'www-authenticate': 'Bearer',
      });
    }
    checkProject(project);
    if (!principal.allows(project)) {
      throw new ApiError(403, 'FORBIDDEN', 'this token may not use this project');
    }
    const decision = this.#faults.decide(principal.id);
    if (decision.kind === 'reset') {
      reply.hijack();
      request.raw.socket.destroy();
      return undefined;
    }
    if (decision.kind === 'status') {
      const headers: Record<string, string> =
        decision.retryAfter === undefined ? {} : { 'retry-after': decision.retryAfter };
      const [code, message] =
        decision.status === 429
          ? ['RATE_LIMITED', 'too many requests (injected fault)']
          : decision.status === 503
            ? ['UNAVAILABLE', 'service unavailable (injected fault)']
            : ['INTERNAL', 'internal error (injected fault)'];
      throw new ApiError(decision.status, code, message, headers);
    }
    const latencyMs = this.#faults.latencyMs;
    if (latencyMs > 0) await this.#clock.sleep(latencyMs, signal);
    return principal;
  }

  #target(request: FastifyRequest): { project: string; key: string } {
    const match = itemPathPattern.exec(request.raw.url ?? '');
    if (!match) throw new ApiError(404, 'NOT_FOUND', 'no such route');
    let project: string;
    try {
      project = match[1]!.includes('%') ? decodeURIComponent(match[1]!) : match[1]!;
    } catch {
      throw new ApiError(400, 'BAD_PROJECT', 'the project id is not valid percent-encoding');
    }
    return { project, key: match[2]! };
  }

  #projectOf(request: FastifyRequest): string {
    return (request.params as { project: string }).project;
  }

  #sendOutcome(reply: FastifyReply, outcome: WriteOutcome): FastifyReply {
    const { answer, replayed } = outcome;
    const headers: Record<string, string> = {};
    if (answer.etag !== undefined) headers.etag = `"${answer.etag}"`;
    if (replayed) headers['idempotent-replayed'] = 'true';
    if (!replayed) this.#countItem(answer.status, answer.body);
    if (answer.body === null) return reply.code(answer.status).headers(headers).send();
    return this.#json(reply, answer.status, answer.body, headers);
  }

  #countItem(status: number, body: unknown): void {
    if (status === 201) this.#metrics.countItem('created');
    else if (status === 204) this.#metrics.countItem('deleted');
    else if (status === 200) {
      this.#metrics.countItem(
        (body as { unchanged?: boolean }).unchanged ? 'unchanged' : 'updated',
      );
    }
  }

  async #withGate<T>(
    project: string,
    idempotencyKey: string | undefined,
    signal: AbortSignal,
    run: () => Promise<T>,
  ): Promise<T> {
    if (idempotencyKey === undefined) return run();
    const release = await this.#gate.enter(`${project}\u0000${idempotencyKey}`, signal);
    try {
      return await run();
    } finally {
      release();
    }
  }

  // ---- routes ------------------------------------------------------------

  async #put(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const signal = signalFor(reply.raw);
    const target = this.#target(request);
    const key = parseItemKey(target.key);
    if (!(await this.#enter(request, reply, target.project, signal))) return reply;
    const project = target.project;
    const contentType = header(request, 'content-type') ?? 'application/octet-stream';
    const conditions = parseConditions(request);
    const idempotencyKey = parseIdempotencyKey(header(request, 'idempotency-key'));
    const expected = parseContentDigest(header(request, 'content-digest'));
    const declared = declaredLength(request);
    if (declared !== undefined && declared > this.#maxBodyBytes) {
      throw new BodyTooLargeError(this.#maxBodyBytes);
    }
    const outcome = await this.#withGate(project, idempotencyKey, signal, async () => {
      const staged = await this.#storage.stage(this.#countedBody(request.raw), {
        maxBytes: this.#maxBodyBytes,
        signal,
      });
      const idempotency: IdempotencyClaim | undefined =
        idempotencyKey === undefined
          ? undefined
          : {
              key: idempotencyKey,
              fingerprint: fingerprint([
                'PUT',
                key,
                staged.sha256,
                contentType,
                conditions ?? null,
                expected ?? null,
              ]),
            };
      const base = { project, key, idempotency, nowMs: this.#clock.now() };
      if (expected !== undefined && expected !== staged.sha256) {
        this.#storage.discard(staged);
        return this.#storage.write({
          ...base,
          kind: 'answer',
          answer: {
            status: 400,
            body: {
              error: {
                code: 'DIGEST_MISMATCH',
                message: 'the body does not match its Content-Digest; nothing was stored',
              },
            },
          },
        });
      }
      return this.#storage.write({ ...base, kind: 'put', body: staged, contentType, conditions });
    });
    return this.#sendOutcome(reply, outcome);
  }

  #countedBody(request: IncomingMessage): AsyncIterable<Uint8Array> | Iterable<Uint8Array> {
    // A small body mostly arrives with the headers. Once the whole message is
    // parsed (complete: the end is already pushed), one read() takes all of it;
    // async iteration of the stream would cost more than the rest of a small
    // PUT's handling.
    if (request.complete && request.readableFlowing === null) {
      const body = request.read() as Buffer | null;
      this.#bytesIn.set(request, body?.length ?? 0);
      return body ? [body] : [];
    }
    return this.#streamedBody(request);
  }

  async *#streamedBody(request: IncomingMessage): AsyncGenerator<Uint8Array> {
    let read = 0;
    // destroyOnReturn: false keeps the socket alive when we stop early (413), so the answer can still go out.
    for await (const chunk of request.iterator({
      destroyOnReturn: false,
    }) as AsyncIterable<Buffer>) {
      read += chunk.length;
      this.#bytesIn.set(request, read);
      yield chunk;
    }
  }

  async #delete(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const signal = signalFor(reply.raw);
    const target = this.#target(request);
    const key = parseItemKey(target.key);
    if (!(await this.#enter(request, reply, target.project, signal))) return reply;
    const project = target.project;
    const conditions = parseConditions(request);
    const idempotencyKey = parseIdempotencyKey(header(request, 'idempotency-key'));
    const outcome = await this.#withGate(project, idempotencyKey, signal, () =>
      this.#storage.write({
        kind: 'delete',
        project,
        key,
        conditions,
        nowMs: this.#clock.now(),
        idempotency:
          idempotencyKey === undefined
            ? undefined
            : {
                key: idempotencyKey,
                fingerprint: fingerprint(['DELETE', key, conditions ?? null]),
              },
      }),
    );
    return this.#sendOutcome(reply, outcome);
  }

  async #get(
    request: FastifyRequest,
    reply: FastifyReply,
    withBody: boolean,
  ): Promise<FastifyReply> {
    const signal = signalFor(reply.raw);
    const target = this.#target(request);
    const key = parseItemKey(target.key);
    if (!(await this.#enter(request, reply, target.project, signal))) return reply;
    const found = withBody
      ? await this.#storage.read(target.project, key)
      : await this.#storage
          .stat(target.project, key)
          .then((meta) => meta && { meta, body: undefined });
    if (!found) throw new ApiError(404, 'NOT_FOUND', 'no such item');
    const { meta, body } = found;
    reply.code(200).headers({
      'content-length': String(meta.size),
      etag: `"${meta.sha256}"`,
      'content-type': meta.contentType,
      'upsync-version': String(meta.version),
    });
    return body ? reply.send(body) : reply.send();
  }

  async #list(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const signal = signalFor(reply.raw);
    const project = this.#projectOf(request);
    if (!(await this.#enter(request, reply, project, signal))) return reply;
    const query = request.query as Record<string, string | string[] | undefined>;
    const single = (name: string): string | undefined => {
      const value = query[name];
      if (Array.isArray(value)) throw new ApiError(400, 'BAD_REQUEST', `${name} may be given once`);
      return value;
    };
    const limitText = single('limit');
    const limit = limitText === undefined ? 1000 : Number(limitText);
    if (!/^\d+$/.test(limitText ?? '1000') || !(limit >= 1 && limit <= 10000)) {
      throw new ApiError(400, 'BAD_REQUEST', 'limit must be an integer from 1 to 10000');
    }
    const after = single('after');
    const prefix = single('prefix');
    const page = await this.#storage.list(project, { after, prefix, limit });
    if (this.#faults.malformListing()) {
      const text = JSON.stringify(page);
      return reply
        .code(200)
        .type(jsonType)
        .send(text.slice(0, Math.max(1, Math.floor(text.length / 2))));
    }
    return this.#json(reply, 200, page);
  }

  async #batch(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const signal = signalFor(reply.raw);
    const project = this.#projectOf(request);
    if (!(await this.#enter(request, reply, project, signal))) return reply;
    const declared = declaredLength(request);
    if (declared !== undefined && declared > MAX_BATCH_BYTES) {
      throw new ApiError(413, 'PAYLOAD_TOO_LARGE', `a batch is at most ${MAX_BATCH_BYTES} bytes`);
    }
    let text: Buffer;
    try {
      text = await readSmallBody(request.raw, MAX_BATCH_BYTES);
    } catch (error) {
      if (error instanceof BodyTooLargeError) {
        throw new ApiError(413, 'PAYLOAD_TOO_LARGE', `a batch is at most ${MAX_BATCH_BYTES} bytes`);
      }
      throw error;
    }
    this.#bytesIn.set(request.raw, text.length);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text.toString('utf8'));
    } catch {
      throw new ApiError(400, 'BAD_REQUEST', 'the batch is not valid JSON');
    }
    const items = (parsed as { items?: unknown })?.items;
    if (!Array.isArray(items)) {
      throw new ApiError(400, 'BAD_REQUEST', 'a batch is {"items": [...]}');
    }
    if (items.length > MAX_BATCH_ITEMS) {
      throw new ApiError(413, 'PAYLOAD_TOO_LARGE', `a batch has at most ${MAX_BATCH_ITEMS} items`);
    }
    const prepared = items.map((raw) => this.#prepareBatchItem(raw));
    // Take the gates in sorted order, so two batches sharing keys cannot wait on each other.
    const gateIds = [
      ...new Set(
        prepared.flatMap((p) =>
          'idempotencyKey' in p && p.idempotencyKey ? [p.idempotencyKey] : [],
        ),
      ),
    ].sort();
    const releases: (() => void)[] = [];
    try {
      for (const id of gateIds)
        releases.push(await this.#gate.enter(`${project}\u0000${id}`, signal));
      const staged = await Promise.all(
        prepared.map((p) =>
          'bytes' in p ? this.#storage.stageBuffer(p.bytes) : Promise.resolve(undefined),
        ),
      );
      const nowMs = this.#clock.now();
      // Submitted in one turn and in request order: they share a transaction and apply in order.
      const outcomes = prepared.map((p, index): Promise<WriteOutcome> | ApiError => {
        if ('error' in p) return p.error;
        const body = staged[index]!;
        return this.#storage.write({
          kind: 'put',
          project,
          key: p.key,
          body,
          contentType: p.contentType,
          conditions: undefined,
          nowMs,
          idempotency:
            p.idempotencyKey === undefined
              ? undefined
              : {
                  key: p.idempotencyKey,
                  fingerprint: fingerprint(['PUT', p.key, body.sha256, p.contentType, null, null]),
                },
        });
      });
      const results = [];
      for (const [index, pending] of outcomes.entries()) {
        const key = prepared[index]!.key;
        if (pending instanceof ApiError) {
          results.push({
            key,
            status: pending.status,
            sha256: null,
            version: null,
            error: pending.toBody().error,
          });
          continue;
        }
        const { answer, replayed } = await pending;
        if (!replayed) this.#countItem(answer.status, answer.body);
        const body = answer.body as {
          sha256?: string;
          version?: number;
          unchanged?: boolean;
          error?: { code: string; message: string };
        };
        results.push({
          key,
          status: answer.status,
          sha256: body?.sha256 ?? null,
          version: body?.version ?? null,
          ...(body?.unchanged === undefined ? {} : { unchanged: body.unchanged }),
          error: body?.error ?? null,
        });
      }
      return this.#json(reply, 200, { results });
    } finally {
      for (const release of releases) release();
    }
  }

  #prepareBatchItem(
    raw: unknown,
  ):
    | { key: unknown; error: ApiError }
    | { key: string; bytes: Buffer; contentType: string; idempotencyKey: string | undefined } {
    const item = raw as {
      key?: unknown;
      body?: unknown;
      contentType?: unknown;
      idempotencyKey?: unknown;
    };
    const key = typeof raw === 'object' && raw !== null ? item.key : undefined;
    try {
      if (typeof key !== 'string')
        throw new ApiError(400, 'BAD_REQUEST', 'each item needs a string "key"');
      checkKey(key);
      if (typeof item.body !== 'string' || !base64Pattern.test(item.body)) {
        throw new ApiError(400, 'BAD_REQUEST', '"body" must be a base64 string');
      }
      const contentType = item.contentType ?? 'application/octet-stream';
      if (typeof contentType !== 'string') {
        throw new ApiError(400, 'BAD_REQUEST', '"contentType" must be a string');
      }
      if (
        item.idempotencyKey !== undefined &&
        item.idempotencyKey !== null &&
        typeof item.idempotencyKey !== 'string'
      ) {
        throw new ApiError(400, 'BAD_IDEMPOTENCY_KEY', '"idempotencyKey" must be a string');
      }
      const idempotencyKey = parseIdempotencyKey(item.idempotencyKey ?? undefined);
      const bytes = Buffer.from(item.body, 'base64');
      if (bytes.length > this.#maxBodyBytes) {
        throw new ApiError(
          413,
          'PAYLOAD_TOO_LARGE',
          `an item body is at most ${this.#maxBodyBytes} bytes`,
        );
      }
      return { key, bytes, contentType, idempotencyKey };
    } catch (error) {
      if (error instanceof ApiError) return { key: key ?? null, error };
      throw error;
    }
  }
}

export type { StagedBody };
