import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import type { PendingBody, RemoteBody } from '@upsync/core';
import { FileChangedError, type FileStamp } from './file-changed-error.ts';
import { FileGoneError } from './file-gone-error.ts';
import { openForReading, sameStamp, type OpenFile } from './hash-file.ts';

export interface FileBodyOptions {
  readonly path: string;
  readonly size: number;
  readonly mtimeMs: number;
  /** Left out for a body rebuilt from an outbox reference, which keeps no inode. */
  readonly ino?: number | undefined;
  /** SHA-256 of the content as of (size, mtime, inode), 64 lowercase hex characters. */
  readonly digest: string;
  readonly contentType?: string | undefined;
  readonly open?: OpenFile | undefined;
  /** Read size; default 64 KiB. */
  readonly chunkBytes?: number | undefined;
}

const DIGEST = /^[0-9a-f]{64}$/;

/**
 * A file as a RemoteBody: `open()` streams it from disk each time (so a retry
 * reads it again and nothing stays in memory), and checks on the way that the
 * bytes are still the ones `size` and `digest` describe. If the file changed
 * it throws FileChangedError, and does so before the last chunk is yielded,
 * so a transport never finishes a request whose body contradicts its digest;
 * if the file is gone it throws FileGoneError.
 */
export class FileBody implements RemoteBody {
  readonly path: string;
  readonly size: number;
  readonly mtimeMs: number;
  readonly ino: number | undefined;
  readonly digest: string;
  readonly contentType?: string;
  readonly #open: OpenFile;
  readonly #chunkBytes: number;

  constructor(options: FileBodyOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(
        `options must be { path, size, mtimeMs, digest }, got ${String(options)}`,
      );
    }
    if (typeof options.path !== 'string' || options.path === '') {
      throw new TypeError(`path must be a non-empty string, got ${JSON.stringify(options.path)}`);
    }
    if (!Number.isSafeInteger(options.size) || options.size < 0) {
      throw new TypeError(`size must be an integer >= 0, got ${String(options.size)}`);
    }
    if (!Number.isFinite(options.mtimeMs)) {
      throw new TypeError(`mtimeMs must be a finite number, got ${String(options.mtimeMs)}`);
    }
    if (options.ino !== undefined && !Number.isFinite(options.ino)) {
      throw new TypeError(`ino must be a number, got ${String(options.ino)}`);
    }
    if (typeof options.digest !== 'string' || !DIGEST.test(options.digest)) {
      throw new TypeError(
        `digest must be 64 lowercase hex characters, got ${JSON.stringify(options.digest)}`,
      );
    }
    const chunkBytes = options.chunkBytes ?? 64 * 1024;
    if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1) {
      throw new TypeError(`chunkBytes must be an integer >= 1, got ${String(chunkBytes)}`);
    }
    this.path = options.path;
    this.size = options.size;
    this.mtimeMs = options.mtimeMs;
    this.ino = options.ino;
    this.digest = options.digest;
    if (options.contentType !== undefined) this.contentType = options.contentType;
    this.#open = options.open ?? openForReading;
    this.#chunkBytes = chunkBytes;
  }

  /** Rebuilds a body from the reference the outbox keeps (after a restart). */
  static fromReference(
    reference: Extract<PendingBody, { type: 'file' }>,
    options: { open?: OpenFile; contentType?: string } = {},
  ): FileBody {
    return new FileBody({ ...reference, ...options });
  }

  /** The reference to store in the outbox in place of the bytes. */
  toReference(): Extract<PendingBody, { type: 'file' }> {
    return {
      type: 'file',
      path: this.path,
      size: this.size,
      mtimeMs: this.mtimeMs,
      digest: this.digest,
    };
  }

  get #stamp(): FileStamp {
    return { size: this.size, mtimeMs: this.mtimeMs, ino: this.ino };
  }

  #changed(what: string, actual?: FileStamp, cause?: unknown): FileChangedError {
    return new FileChangedError(`${this.path} ${what}; send its new content`, {
      path: this.path,
      expected: this.#stamp,
      actual,
      ...(cause === undefined ? {} : { cause }),
    });
  }

  async *open(): AsyncGenerator<Uint8Array> {
    let handle: FileHandle;
    try {
      handle = await this.#open(this.path);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        throw new FileGoneError(`${this.path} was deleted before it was sent`, {
          path: this.path,
          cause: error,
        });
      }
      throw error;
    }
    try {
      const before = await handle.stat();
      const stampOf = (s: typeof before): FileStamp => ({
        size: s.size,
        mtimeMs: s.mtimeMs,
        ino: s.ino,
      });
      if (!before.isFile()) {
        throw new FileGoneError(`${this.path} is no longer a regular file`, { path: this.path });
      }
      if (!sameStamp(this.#stamp, stampOf(before))) {
        throw this.#changed('changed after its digest was taken', stampOf(before));
      }
      const hash = createHash('sha256');
      let read = 0;
      // Held back one chunk, so the last one goes out only after the whole file checked out.
      let held: Uint8Array | undefined;
      const stream = handle.createReadStream({ autoClose: false, highWaterMark: this.#chunkBytes });
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        read += chunk.length;
        if (read > this.size) throw this.#changed('grew while it was sent');
        hash.update(chunk);
        if (held) yield held;
        held = chunk;
      }
      const after = await handle.stat();
      if (read !== this.size || !sameStamp(this.#stamp, stampOf(after))) {
        throw this.#changed('changed while it was sent', stampOf(after));
      }
      if (hash.digest('hex') !== this.digest) {
        throw this.#changed(
          'has content other than its digest says (written within the same mtime)',
          stampOf(after),
        );
      }
      if (held) yield held;
    } finally {
      await handle.close();
    }
  }
}
