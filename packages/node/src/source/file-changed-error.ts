import { UpsyncError, type UpsyncErrorOptions } from '@upsync/core';

/** A file's identity as the folder source sees it: enough to tell that it changed. */
export interface FileStamp {
  readonly size: number;
  readonly mtimeMs: number;
  /** Unknown (undefined) for a body rebuilt from an outbox reference, which keeps no inode. */
  readonly ino?: number | undefined;
}

export interface FileChangedErrorOptions extends UpsyncErrorOptions {
  readonly path: string;
  /** What the body was made from. */
  readonly expected: FileStamp;
  /** What the file is now, where it was seen. */
  readonly actual?: FileStamp | undefined;
}

/**
 * The file changed after its digest was taken (before or while it was read for
 * a send). Not a failure of the item: the engine requeues the key with the
 * file's new content (shared/DESIGN.md "Delivery"), never dead-letters it. The
 * body's stream throws this before it yields the last byte, so a remote never
 * receives a complete body that does not match the digest it was sent with.
 */
export class FileChangedError extends UpsyncError {
  static override readonly brand: symbol = Symbol.for('upsync.error/FileChangedError');
  readonly path: string;
  readonly expected: FileStamp;
  readonly actual: FileStamp | undefined;

  constructor(message: string, options: FileChangedErrorOptions) {
    super('ERR_FILE_CHANGED', message, { ...options, retryable: true });
    this.path = options.path;
    this.expected = options.expected;
    this.actual = options.actual;
  }
}
