import { createHash, hash, randomBytes, type Hash } from 'node:crypto';
import {
  closeSync,
  createReadStream,
  fdatasync,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  rmSync,
} from 'node:fs';
import { mkdir, open, rename, rm, stat as statFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { GroupCommit } from './group-commit.ts';
import {
  BodyTooLargeError,
  IDEMPOTENCY_TTL_MS,
  isKeptStatus,
  type Conditions,
  type ItemMeta,
  type ListOptions,
  type ListPage,
  type ServerStorage,
  type StageOptions,
  type StagedBody,
  type StoredAnswer,
  type WriteOutcome,
  type WriteRequest,
} from './storage.ts';

export interface SqliteStorageOptions {
  /** The data folder: `upsync.db` and `blobs/` live here. Created when missing. */
  dir: string;
  /**
   * Bodies up to this size stay in the database (default 128 KiB); larger ones
   * are content-addressed files. Small rows in SQLite are faster than files,
   * and keep one fsync per group commit instead of one per body.
   */
  inlineMaxBytes?: number;
  /** How often answers older than 24 h are pruned, at most (default 10 min). */
  pruneEveryMs?: number;
  /** The size of the -wal file past which a commit is followed by a checkpoint (default 64 MiB). */
  checkpointBytes?: number;
  /**
   * Makes the -wal file durable; default `fdatasync` in libuv's thread pool.
   * Tests inject one to see that no write is answered before its sync.
   */
  syncWal?: (fd: number) => Promise<void>;
}

function fdatasyncAsync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => {
    fdatasync(fd, (error) => (error ? reject(error) : resolve()));
  });
}

function fsyncDirSync(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** A body this storage staged: in memory when small, else a blob file already in place. */
class SqliteStagedBody implements StagedBody {
  readonly size: number;
  readonly sha256: string;
  readonly inline: Uint8Array | undefined;
  released = false;
  constructor(size: number, sha256: string, inline: Uint8Array | undefined) {
    this.size = size;
    this.sha256 = sha256;
    this.inline = inline;
  }
}

interface ItemRow {
  size: number;
  sha256: string;
  version: number;
  content_type: string;
  is_file: number;
}

interface IdempotencyRow {
  fingerprint: string;
  status: number;
  body: string | null;
  etag: string | null;
}

const schema = `
CREATE TABLE IF NOT EXISTS items (
  project TEXT NOT NULL,
  key TEXT NOT NULL,
  size INTEGER NOT NULL,
  sha256 TEXT NOT NULL,
  version INTEGER NOT NULL,
  content_type TEXT NOT NULL,
  -- NULL when the body is a file under blobs/.
  body BLOB,
  updated_ms INTEGER NOT NULL,
  PRIMARY KEY (project, key)
);
CREATE TABLE IF NOT EXISTS blobs (
  sha256 TEXT PRIMARY KEY,
  refs INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idempotency (
  project TEXT NOT NULL,
  idem_key TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  status INTEGER NOT NULL,
  body TEXT,
  etag TEXT,
  created_ms INTEGER NOT NULL,
  PRIMARY KEY (project, idem_key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idempotency_age ON idempotency (created_ms);
`;

function errorBody(code: string, message: string): unknown {
  return { error: { code, message } };
}

/** The smallest string above every string that starts with `prefix`, in UTF-8 byte order. */
function prefixEnd(prefix: string): string | undefined {
  const points = [...prefix];
  while (points.length > 0) {
    const last = points.pop()!.codePointAt(0)!;
    if (last < 0x10ffff) {
      const next = last + 1 === 0xd800 ? 0xe000 : last + 1;
      return points.join('') + String.fromCodePoint(next);
    }
  }
  return undefined;
}

function matches(list: readonly string[] | '*', sha256: string | undefined): boolean {
  if (sha256 === undefined) return false;
  return list === '*' || list.includes(sha256);
}

async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function writeAll(handle: FileHandle, chunk: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < chunk.byteLength) {
    const { bytesWritten } = await handle.write(chunk, offset, chunk.byteLength - offset);
    offset += bytesWritten;
  }
}

/**
 * The reference storage: metadata and small bodies in SQLite (WAL), larger
 * bodies as files named by their SHA-256 under `blobs/`. Writes go through
 * group commit. A blob file is written to `tmp/`, fsync'd, renamed into place
 * and its folder fsync'd before the row naming it commits, so an acknowledged
 * PUT survives power loss.
 *
 * Durability without blocking the event loop. With synchronous=FULL, COMMIT
 * fsyncs the -wal file on the main thread, and no request is read or parsed
 * while it waits. Instead, commits run with synchronous=OFF (COMMIT only
 * writes the WAL frames into the page cache) and GroupCommit answers a batch
 * only after an `fdatasync` of the -wal file, started after its COMMIT
 * returned, has resolved in libuv's thread pool. Why that is as safe as FULL:
 *
 * 1. A transaction is in the WAL once its frames, the last one marked as a
 *    commit, are there with valid checksums. After the fdatasync every frame of
 *    the batch (and of every earlier one: fsync is per file, not per
 *    descriptor) is on disk, so recovery finds it. Frames of later, unanswered
 *    batches may be torn; their checksums (chained from the WAL header) stop
 *    recovery at the last whole transaction, as after any crash.
 * 2. With synchronous=OFF SQLite never syncs anything, so everything it would
 *    sync outside COMMIT is done here by hand:
 *    - Checkpoints: autocheckpoint is off, and `#checkpoint` runs with
 *      synchronous=FULL set for it, so SQLite syncs the WAL before copying pages
 *      and the database file before it counts them as copied.
 *    - WAL restart: after a complete checkpoint SQLite would rewrite the WAL
 *      from the start with a new header, and FULL syncs that header before any
 *      frame (SQLite ticket ff5be73dee: without it, an old header surviving
 *      with some new frames can make recovery accept a prefix of old frames,
 *      which are older than the database pages, and corrupt it). We never let
 *      a restart happen in place: the checkpoint is TRUNCATE, and the emptied
 *      -wal file is fsync'd before the next transaction, so no old frame can
 *      survive for a new or old header to pick up. Only a full checkpoint can
 *      set up a restart (SQLite restarts only when every frame is copied); if
 *      one ever fails to truncate (another process reading), we stay at FULL,
 *      where SQLite's own header sync covers the restart.
 *    - Close: SQLite checkpoints and deletes the WAL when the last connection
 *      closes; FULL is set first so the database file is synced before that.
 *    - The -wal file's directory entry: fsync'd once at open.
 * 3. Readers (`stat`, `read`, `list`) see committed but not yet synced
 *    transactions, so they wait for the sync before answering: nobody is shown
 *    a write that a power loss could still take back.
 *
 * SQLite holds POSIX locks on the database file, which closing any other
 * descriptor of that file would drop; we only open the -wal file (unlocked).
 */
export class SqliteStorage implements ServerStorage {
  readonly #dir: string;
  readonly #db: DatabaseSync;
  readonly #walFd: number;
  readonly #checkpointBytes: number;
  readonly #commit: GroupCommit;
  readonly #inlineMaxBytes: number;
  readonly #pruneEveryMs: number;
  // How many staged bodies in flight hold each blob: their files may not be collected.
  readonly #inflight = new Map<string, number>();
  readonly #candidates = new Set<string>();
  // Blobs whose last row the transaction in progress dropped.
  #freedInTx: string[] = [];
  #lastPruneMs = -Infinity;
  readonly #sql: Record<
    | 'getItem'
    | 'getItemWithBody'
    | 'upsertItem'
    | 'deleteItem'
    | 'refBlob'
    | 'unrefBlob'
    | 'getBlob'
    | 'dropBlob'
    | 'getAnswer'
    | 'putAnswer'
    | 'prune'
    | 'count'
    | 'list'
    | 'listBounded'
    | 'checkpoint',
    StatementSync
  >;

  constructor(options: SqliteStorageOptions) {
    if (typeof options?.dir !== 'string' || options.dir === '') {
      throw new TypeError(`dir must be a folder path, got ${JSON.stringify(options?.dir)}`);
    }
    const inlineMaxBytes = options.inlineMaxBytes ?? 128 * 1024;
    if (
      !Number.isInteger(inlineMaxBytes) ||
      inlineMaxBytes < 0 ||
      inlineMaxBytes > 64 * 1024 ** 2
    ) {
      throw new TypeError(
        `inlineMaxBytes must be an integer from 0 to 64 MiB, got ${inlineMaxBytes}`,
      );
    }
    const pruneEveryMs = options.pruneEveryMs ?? 10 * 60 * 1000;
    if (!Number.isFinite(pruneEveryMs) || pruneEveryMs < 0) {
      throw new TypeError(`pruneEveryMs must be a finite number >= 0, got ${pruneEveryMs}`);
    }
    const checkpointBytes = options.checkpointBytes ?? 64 * 1024 ** 2;
    if (!Number.isFinite(checkpointBytes) || checkpointBytes < 0) {
      throw new TypeError(`checkpointBytes must be a finite number >= 0, got ${checkpointBytes}`);
    }
    const syncWal = options.syncWal ?? fdatasyncAsync;
    if (typeof syncWal !== 'function') {
      throw new TypeError(`syncWal must be a function, got ${typeof syncWal}`);
    }
    this.#dir = options.dir;
    this.#inlineMaxBytes = inlineMaxBytes;
    this.#pruneEveryMs = pruneEveryMs;
    this.#checkpointBytes = checkpointBytes;
    mkdirSync(join(this.#dir, 'blobs'), { recursive: true });
    mkdirSync(join(this.#dir, 'tmp'), { recursive: true });
    // Staged files of a previous run that never committed are garbage.
    for (const name of readdirSync(join(this.#dir, 'tmp'))) {
      rmSync(join(this.#dir, 'tmp', name), { force: true });
    }
    const dbPath = join(this.#dir, 'upsync.db');
    this.#db = new DatabaseSync(dbPath);
    // FULL until the first checkpoint below has emptied the WAL (see the class comment).
    this.#db.exec('PRAGMA synchronous = FULL');
    this.#db.exec('PRAGMA journal_mode = WAL');
    this.#db.exec('PRAGMA busy_timeout = 5000');
    // Checkpoints are ours (#checkpoint), never SQLite's at synchronous=OFF.
    this.#db.exec('PRAGMA wal_autocheckpoint = 0');
    this.#db.exec(schema);
    const db = this.#db;
    this.#sql = {
      getItem: db.prepare(
        'SELECT size, sha256, version, content_type, body IS NULL AS is_file FROM items WHERE project = ? AND key = ?',
      ),
      getItemWithBody: db.prepare(
        'SELECT size, sha256, version, content_type, body FROM items WHERE project = ? AND key = ?',
      ),
      upsertItem: db.prepare(
        `INSERT INTO items (project, key, size, sha256, version, content_type, body, updated_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (project, key) DO UPDATE SET size = excluded.size, sha256 = excluded.sha256,
           version = excluded.version, content_type = excluded.content_type, body = excluded.body,
           updated_ms = excluded.updated_ms`,
      ),
      deleteItem: db.prepare('DELETE FROM items WHERE project = ? AND key = ?'),
      refBlob: db.prepare(
        'INSERT INTO blobs (sha256, refs) VALUES (?, 1) ON CONFLICT (sha256) DO UPDATE SET refs = refs + 1',
      ),
      unrefBlob: db.prepare('UPDATE blobs SET refs = refs - 1 WHERE sha256 = ? RETURNING refs'),
      getBlob: db.prepare('SELECT refs FROM blobs WHERE sha256 = ?'),
      dropBlob: db.prepare('DELETE FROM blobs WHERE sha256 = ? AND refs <= 0'),
      getAnswer: db.prepare(
        'SELECT fingerprint, status, body, etag FROM idempotency WHERE project = ? AND idem_key = ? AND created_ms > ?',
      ),
      putAnswer: db.prepare(
        `INSERT OR REPLACE INTO idempotency (project, idem_key, fingerprint, status, body, etag, created_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      prune: db.prepare('DELETE FROM idempotency WHERE created_ms <= ?'),
      count: db.prepare('SELECT count(*) AS n FROM items'),
      list: db.prepare(
        'SELECT key, size, sha256, version FROM items WHERE project = ? AND key > ? AND key >= ? ORDER BY key LIMIT ?',
      ),
      listBounded: db.prepare(
        'SELECT key, size, sha256, version FROM items WHERE project = ? AND key > ? AND key >= ? AND key < ? ORDER BY key LIMIT ?',
      ),
      checkpoint: db.prepare('PRAGMA wal_checkpoint(TRUNCATE)'),
    };
    // WAL mode keeps the -wal file until the last connection closes.
    this.#walFd = openSync(`${dbPath}-wal`, 'r');
    // The database and -wal files may be new; their names must survive power loss too.
    fsyncDirSync(this.#dir);
    // Frames a crashed process left in the page cache are made durable before
    // anyone reads them, and the WAL starts empty.
    this.#checkpoint();
    const walFd = this.#walFd;
    this.#commit = new GroupCommit({
      db,
      sync: () => syncWal(walFd),
      afterCommit: () => this.#afterCommit(),
    });
  }

  async stage(
    source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    options: StageOptions,
  ): Promise<StagedBody> {
    const chunks: Uint8Array[] = [];
    let size = 0;
    // Only a body spilled to a file is hashed as it streams; a small one is
    // hashed in one call at the end, which is cheaper.
    let hasher: Hash | undefined;
    let handle: FileHandle | undefined;
    let tmpPath: string | undefined;
    try {
      for await (const chunk of source) {
        options.signal?.throwIfAborted();
        size += chunk.byteLength;
        if (size > options.maxBytes) throw new BodyTooLargeError(options.maxBytes);
        if (handle && hasher) {
          hasher.update(chunk);
          await writeAll(handle, chunk);
          continue;
        }
        chunks.push(chunk);
        if (size > this.#inlineMaxBytes) {
          // Too big for a row: spill to a file and stream the rest there.
          tmpPath = join(this.#dir, 'tmp', randomBytes(12).toString('hex'));
          handle = await open(tmpPath, 'wx');
          hasher = createHash('sha256');
          for (const buffered of chunks) {
            hasher.update(buffered);
            await writeAll(handle, buffered);
          }
          chunks.length = 0;
        }
      }
      if (!handle || !hasher || tmpPath === undefined) {
        const inline = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
        return new SqliteStagedBody(size, hash('sha256', inline, 'hex'), inline);
      }
      const sha256 = hasher.digest('hex');
      // Durable before the commit that names it (see #place for the rename).
      await handle.sync();
      await handle.close();
      handle = undefined;
      await this.#place(tmpPath, sha256);
      tmpPath = undefined;
      return new SqliteStagedBody(size, sha256, undefined);
    } finally {
      await handle?.close().catch(() => {});
      if (tmpPath !== undefined) await rm(tmpPath, { force: true });
    }
  }

  async stageBuffer(body: Uint8Array): Promise<StagedBody> {
    return this.stage([body], { maxBytes: Number.MAX_SAFE_INTEGER });
  }

  discard(body: StagedBody): void {
    this.#release(body);
    this.#collect();
  }

  async write(request: WriteRequest): Promise<WriteOutcome> {
    if (this.#pruneEveryMs >= 0 && request.nowMs - this.#lastPruneMs >= this.#pruneEveryMs) {
      this.#lastPruneMs = request.nowMs;
      const cutoff = request.nowMs - IDEMPOTENCY_TTL_MS;
      void this.#commit.submit(() => this.#sql.prune.run(cutoff)).catch(() => {});
    }
    try {
      return await this.#commit.submit(() => this.#apply(request));
    } finally {
      if (request.kind === 'put') this.#release(request.body);
      this.#collect();
    }
  }

  async stat(project: string, key: string): Promise<ItemMeta | undefined> {
    const row = this.#sql.getItem.get(project, key) as ItemRow | undefined;
    await this.#commit.durable();
    return row && this.#meta(key, row);
  }

  async read(
    project: string,
    key: string,
  ): Promise<{ meta: ItemMeta; body: Readable } | undefined> {
    const row = this.#sql.getItemWithBody.get(project, key) as
      (ItemRow & { body: Uint8Array | null }) | undefined;
    if (!row) {
      await this.#commit.durable();
      return undefined;
    }
    let body: Readable;
    if (row.body) {
      body = Readable.from([
        Buffer.from(row.body.buffer, row.body.byteOffset, row.body.byteLength),
      ]);
    } else {
      // Opened in the same tick as the row was read: the file cannot be collected
      // in between, and an open descriptor outlives a later unlink.
      const fd = openSync(this.#blobPath(row.sha256), 'r');
      body = createReadStream('', { fd });
    }
    try {
      await this.#commit.durable();
    } catch (error) {
      body.destroy();
      throw error;
    }
    return { meta: this.#meta(key, row), body };
  }

  async list(project: string, options: ListOptions): Promise<ListPage> {
    const prefix = options.prefix ?? '';
    const after = options.after ?? '';
    // Keys starting with the prefix form one run in byte order: [prefix, prefixEnd).
    const upper = prefix === '' ? undefined : prefixEnd(prefix);
    const fetch = options.limit + 1;
    const rows = (
      upper === undefined
        ? this.#sql.list.all(project, after, prefix, fetch)
        : this.#sql.listBounded.all(project, after, prefix, upper, fetch)
    ) as { key: string; size: number; sha256: string; version: number }[];
    const items = rows.slice(0, options.limit).map((row) => ({
      key: row.key,
      size: row.size,
      sha256: row.sha256,
      version: row.version,
    }));
    const next = rows.length > options.limit ? items[items.length - 1]!.key : null;
    await this.#commit.durable();
    return { items, next };
  }

  countItems(): Promise<number> {
    return Promise.resolve((this.#sql.count.get() as { n: number }).n);
  }

  async close(): Promise<void> {
    await this.#commit.close();
    if (this.#db.isOpen) {
      // Closing checkpoints and deletes the -wal file: the database file must be synced first.
      this.#db.exec('PRAGMA synchronous = FULL');
      this.#db.close();
      closeSync(this.#walFd);
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #meta(key: string, row: ItemRow): ItemMeta {
    return {
      key,
      size: row.size,
      sha256: row.sha256,
      version: row.version,
      contentType: row.content_type,
    };
  }

  #afterCommit(): void {
    // Until this transaction is durable, a power loss could bring back the rows
    // naming these files, so they stay held until then. If the sync fails they
    // stay held for good: leaking a file is the safe side.
    const freed = this.#freedInTx;
    this.#freedInTx = [];
    if (freed.length > 0) {
      for (const sha256 of freed) this.#hold(sha256);
      this.#commit.durable().then(
        () => {
          for (const sha256 of freed) this.#unhold(sha256);
          this.#collect();
        },
        () => {},
      );
    }
    if (fstatSync(this.#walFd).size >= this.#checkpointBytes) this.#checkpoint();
  }

  /**
   * Copies the WAL into the database file and empties it, durably: FULL for the
   * checkpoint's own syncs, then an fsync of the truncated -wal file before any
   * new frame is written (see the class comment). Stays at FULL if the WAL
   * could not be emptied.
   */
  #checkpoint(): void {
    this.#db.exec('PRAGMA synchronous = FULL');
    const row = this.#sql.checkpoint.get() as { busy: number; log: number };
    if (row.busy !== 0 || row.log !== 0) return;
    fsyncSync(this.#walFd);
    this.#db.exec('PRAGMA synchronous = OFF');
  }

  #blobPath(sha256: string): string {
    return join(this.#dir, 'blobs', sha256.slice(0, 2), sha256);
  }

  async #place(tmpPath: string, sha256: string): Promise<void> {
    // Held from here until the write that uses it commits (or is discarded).
    this.#hold(sha256);
    const target = this.#blobPath(sha256);
    try {
      const exists = await statFile(target).then(
        () => true,
        () => false,
      );
      if (exists) {
        await rm(tmpPath, { force: true });
        return;
      }
      const folder = join(this.#dir, 'blobs', sha256.slice(0, 2));
      await mkdir(folder, { recursive: true });
      await rename(tmpPath, target);
      await fsyncDir(folder);
    } catch (error) {
      this.#unhold(sha256);
      throw error;
    }
  }

  #release(body: StagedBody): void {
    if (!(body instanceof SqliteStagedBody) || body.released) return;
    body.released = true;
    if (body.inline) return;
    this.#unhold(body.sha256);
  }

  #hold(sha256: string): void {
    this.#inflight.set(sha256, (this.#inflight.get(sha256) ?? 0) + 1);
  }

  #unhold(sha256: string): void {
    const held = (this.#inflight.get(sha256) ?? 1) - 1;
    if (held > 0) this.#inflight.set(sha256, held);
    else this.#inflight.delete(sha256);
    this.#candidates.add(sha256);
  }

  /**
   * Deletes blob files that no row and nothing held refers to. Never called
   * inside the group transaction (it runs from settled promises), so the rows
   * it reads are committed.
   */
  #collect(): void {
    for (const sha256 of this.#candidates) {
      if (this.#inflight.has(sha256) || this.#sql.getBlob.get(sha256)) continue;
      rmSync(this.#blobPath(sha256), { force: true });
    }
    this.#candidates.clear();
  }

  /** The file goes once the transaction is durable: see #afterCommit. */
  #unref(sha256: string): void {
    const row = this.#sql.unrefBlob.get(sha256) as { refs: number } | undefined;
    if (row && row.refs <= 0) {
      this.#sql.dropBlob.run(sha256);
      // Stale entries (a rolled-back run) are harmless: #collect checks the rows.
      this.#freedInTx.push(sha256);
    }
  }

  /** Runs inside the group transaction, perhaps twice (see GroupCommit.submit). */
  #apply(request: WriteRequest): WriteOutcome {
    const { project, idempotency, nowMs } = request;
    if (idempotency) {
      const kept = this.#sql.getAnswer.get(project, idempotency.key, nowMs - IDEMPOTENCY_TTL_MS) as
        IdempotencyRow | undefined;
      if (kept) {
        if (kept.fingerprint !== idempotency.fingerprint) {
          return {
            replayed: false,
            answer: {
              status: 422,
              body: errorBody(
                'IDEMPOTENCY_KEY_REUSED',
                'this Idempotency-Key was already used for a different request',
              ),
            },
          };
        }
        const answer: StoredAnswer = {
          status: kept.status,
          body: kept.body === null ? null : (JSON.parse(kept.body) as unknown),
          ...(kept.etag === null ? {} : { etag: kept.etag }),
        };
        return { replayed: true, answer };
      }
    }
    const answer = this.#decide(request);
    if (idempotency && isKeptStatus(answer.status)) {
      this.#sql.putAnswer.run(
        project,
        idempotency.key,
        idempotency.fingerprint,
        answer.status,
        answer.body === null ? null : JSON.stringify(answer.body),
        answer.etag ?? null,
        nowMs,
      );
    }
    return { replayed: false, answer };
  }

  #decide(request: WriteRequest): StoredAnswer {
    if (request.kind === 'answer') return request.answer;
    const { project, key } = request;
    const current = this.#sql.getItem.get(project, key) as ItemRow | undefined;
    const failed = this.#precondition(request.conditions, current);
    if (failed) return failed;
    if (request.kind === 'delete') {
      if (!current) return { status: 404, body: errorBody('NOT_FOUND', 'no such item') };
      this.#sql.deleteItem.run(project, key);
      if (current.is_file) this.#unref(current.sha256);
      return { status: 204, body: null };
    }
    const body = request.body;
    if (!(body instanceof SqliteStagedBody) || body.released) {
      throw new TypeError('the body was not staged by this storage, or was already used');
    }
    const sameBody = current !== undefined && current.sha256 === body.sha256;
    if (sameBody && current.content_type === request.contentType) {
      return this.#putAnswer(200, key, current.size, current.sha256, current.version, true);
    }
    const version = current ? current.version + 1 : 1;
    if (!body.inline) this.#sql.refBlob.run(body.sha256);
    this.#sql.upsertItem.run(
      project,
      key,
      body.size,
      body.sha256,
      version,
      request.contentType,
      body.inline ?? null,
      request.nowMs,
    );
    if (current?.is_file) this.#unref(current.sha256);
    return this.#putAnswer(current ? 200 : 201, key, body.size, body.sha256, version, false);
  }

  #putAnswer(
    status: number,
    key: string,
    size: number,
    sha256: string,
    version: number,
    unchanged: boolean,
  ): StoredAnswer {
    return { status, body: { key, size, sha256, version, unchanged }, etag: sha256 };
  }

  #precondition(conditions: Conditions, current: ItemRow | undefined): StoredAnswer | undefined {
    if (!conditions) return undefined;
    const sha = current?.sha256;
    if (conditions.ifMatch !== undefined && !matches(conditions.ifMatch, sha)) {
      return {
        status: 412,
        body: errorBody('PRECONDITION_FAILED', 'If-Match: the item does not have that ETag'),
      };
    }
    if (conditions.ifNoneMatch !== undefined && matches(conditions.ifNoneMatch, sha)) {
      return {
        status: 412,
        body: errorBody(
          'PRECONDITION_FAILED',
          'If-None-Match: the item exists with a matching ETag',
        ),
      };
    }
    return undefined;
  }
}
