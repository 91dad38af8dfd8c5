import { createHash } from 'node:crypto';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileChangedError } from './file-changed-error.ts';
import { hashFile } from './hash-file.ts';

const base = mkdtempSync(join(tmpdir(), 'upsync-hash-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));
const sha256 = (data: string | Uint8Array): string =>
  createHash('sha256').update(data).digest('hex');

describe('hashFile', () => {
  it('streams a file through SHA-256 in chunks and returns the stamp it covers', async () => {
    const path = join(base, 'big.bin');
    const data = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
    writeFileSync(path, data);
    const hashed = await hashFile(path, { chunkBytes: 64 * 1024 });
    expect(hashed).toMatchObject({
      digest: sha256(data),
      size: data.length,
      bytesRead: data.length,
    });
    expect(hashed.ino).toBeGreaterThan(0);
  });

  it('throws FileChangedError when the file changes while it is read', async () => {
    const path = join(base, 'moving.log');
    writeFileSync(path, 'first line\n');
    let stats = 0;
    // The second fstat (after reading) sees an append made in between.
    const changing = async (p: string): Promise<FileHandle> => {
      const handle = await open(p, 'r');
      return new Proxy(handle, {
        get(target, prop, receiver) {
          if (prop === 'stat') {
            return async () => {
              if (++stats === 2) appendFileSync(path, 'second line\n');
              return target.stat();
            };
          }
          const value: unknown = Reflect.get(target, prop, receiver);
          return typeof value === 'function'
            ? (value as (...a: unknown[]) => unknown).bind(target)
            : value;
        },
      });
    };
    const error = await hashFile(path, { open: changing }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FileChangedError);
    expect(error).toMatchObject({ code: 'ERR_FILE_CHANGED', retryable: true, path });
  });

  it('rejects with the signal reason', async () => {
    const path = join(base, 'a.txt');
    writeFileSync(path, 'a');
    const reason = new Error('stop');
    await expect(hashFile(path, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
  });

  it('rejects with the signal reason when the stop comes between the open and the read', async () => {
    const path = join(base, 'b.txt');
    writeFileSync(path, 'b');
    const controller = new AbortController();
    const reason = new Error('stop');
    const stopDuringStat = async (file: string): Promise<FileHandle> => {
      const handle = await open(file, 'r');
      const stat = handle.stat.bind(handle);
      handle.stat = (async () => {
        const stats = await stat();
        controller.abort(reason);
        return stats;
      }) as FileHandle['stat'];
      return handle;
    };
    await expect(hashFile(path, { open: stopDuringStat, signal: controller.signal })).rejects.toBe(
      reason,
    );
  });
});
