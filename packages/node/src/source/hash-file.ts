import { createHash } from 'node:crypto';
import { open as openNode, type FileHandle } from 'node:fs/promises';
import { FileChangedError, type FileStamp } from './file-changed-error.ts';

/** Opens a file for reading; injectable so tests can count (or fail) the opens. */
export type OpenFile = (path: string) => Promise<FileHandle>;

export const openForReading: OpenFile = (path) => openNode(path, 'r');

export interface HashFileOptions {
  readonly open?: OpenFile | undefined;
  readonly signal?: AbortSignal | undefined;
  /** Read size; default 64 KiB. */
  readonly chunkBytes?: number | undefined;
}

/** The digest of a file and the stamp (size, mtime, inode) of the exact content it covers. */
export interface HashedFile extends Required<FileStamp> {
  /** SHA-256, 64 lowercase hex characters. */
  readonly digest: string;
  /** Bytes read. */
  readonly bytesRead: number;
}

export const sameStamp = (a: FileStamp, b: FileStamp): boolean =>
  a.size === b.size &&
  a.mtimeMs === b.mtimeMs &&
  (a.ino === undefined || b.ino === undefined || a.ino === b.ino);

/**
 * Streams a file through SHA-256, never holding more than one chunk. The
 * stamp is taken from the open handle before and after reading: if they
 * differ (or the byte count does not match), the file was being written
 * meanwhile and the digest belongs to no version of it, so this throws
 * FileChangedError instead of returning it.
 */
export async function hashFile(path: string, options: HashFileOptions = {}): Promise<HashedFile> {
  const signal = options.signal;
  signal?.throwIfAborted();
  const handle = await (options.open ?? openForReading)(path);
  try {
    const before = await handle.stat();
    if (!before.isFile()) {
      throw new FileChangedError(`${path} is no longer a regular file`, {
        path,
        expected: { size: before.size, mtimeMs: before.mtimeMs, ino: before.ino },
      });
    }
    const hash = createHash('sha256');
    let bytesRead = 0;
    // One buffer read into again and again, not a stream's fresh chunk per read:
    // hashing a 1 GiB file then leaves no garbage for the GC to catch up with.
    // A small file's buffer has a byte to spare, so one short read ends it.
    const buffer = Buffer.allocUnsafe(Math.min(options.chunkBytes ?? 64 * 1024, before.size + 1));
    for (;;) {
      signal?.throwIfAborted();
      const { bytesRead: n } = await handle.read(buffer, 0, buffer.length, null);
      hash.update(n === buffer.length ? buffer : buffer.subarray(0, n));
      bytesRead += n;
      if (n < buffer.length) break;
    }
    const after = await handle.stat();
    const stampBefore = { size: before.size, mtimeMs: before.mtimeMs, ino: before.ino };
    const stampAfter = { size: after.size, mtimeMs: after.mtimeMs, ino: after.ino };
    if (!sameStamp(stampBefore, stampAfter) || bytesRead !== after.size) {
      throw new FileChangedError(`${path} changed while its digest was computed`, {
        path,
        expected: stampBefore,
        actual: stampAfter,
      });
    }
    return { ...stampAfter, digest: hash.digest('hex'), bytesRead };
  } finally {
    await handle.close();
  }
}
