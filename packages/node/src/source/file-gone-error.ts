import { UpsyncError, type UpsyncErrorOptions } from '@upsync/core';

export interface FileGoneErrorOptions extends UpsyncErrorOptions {
  readonly path: string;
}

/**
 * The file was deleted (or replaced by something that is not a file) after
 * its version was taken in. Retrying the same version cannot succeed, yet the
 * item did nothing wrong: the engine should drop the version (the watcher or
 * the next scan reports the deletion, which `--delete` turns into a tombstone)
 * rather than dead-letter it.
 */
export class FileGoneError extends UpsyncError {
  static override readonly brand: symbol = Symbol.for('upsync.error/FileGoneError');
  readonly path: string;

  constructor(message: string, options: FileGoneErrorOptions) {
    super('ERR_FILE_GONE', message, { ...options, retryable: false });
    this.path = options.path;
  }
}
