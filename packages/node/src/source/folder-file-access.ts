import { relative, sep } from 'node:path';
import type { FileAccess, FileRef, RemoteBody } from '@upsync/core';
import { FileBody } from './file-body.ts';
import type { FolderSource } from './folder-source.ts';

/**
 * The engine's FileAccess over a FolderSource: a reference in the outbox is
 * opened as a FileBody (read when the send starts, checked against its
 * digest), and refreshed through the source (so the digest cache is used)
 * when the file changed while it was sent.
 */
export class FolderFileAccess implements FileAccess {
  readonly #source: FolderSource;

  constructor(source: FolderSource) {
    if (typeof source?.file !== 'function') {
      throw new TypeError(`source must be a FolderSource, got ${typeof source}`);
    }
    this.#source = source;
  }

  open(ref: FileRef): RemoteBody {
    return FileBody.fromReference(ref);
  }

  async refresh(ref: FileRef, options: { signal?: AbortSignal }): Promise<FileRef | null> {
    const key = relative(this.#source.root, ref.path).split(sep).join('/').normalize('NFC');
    const item = await this.#source.file(key, { signal: options.signal });
    return item?.type === 'file' ? item.body.toReference() : null;
  }
}
