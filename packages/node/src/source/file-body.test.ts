import { createHash } from 'node:crypto';
import {
  appendFileSync,
  mkdtempSync,
  rmSync,
  statSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UpsyncError } from '@upsync/core';
import { afterAll, describe, expect, it } from 'vitest';
import { FileBody } from './file-body.ts';
import { FileChangedError } from './file-changed-error.ts';
import { FileGoneError } from './file-gone-error.ts';

const base = mkdtempSync(join(tmpdir(), 'upsync-body-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));
let files = 0;
const sha256 = (data: string | Uint8Array): string =>
  createHash('sha256').update(data).digest('hex');

/** A file and a body made from its current content. */
function bodyFor(
  content: string | Uint8Array,
  chunkBytes?: number,
): { path: string; body: FileBody } {
  const path = join(base, `f${++files}`);
  writeFileSync(path, content);
  const s = statSync(path);
  const body = new FileBody({
    path,
    size: s.size,
    mtimeMs: s.mtimeMs,
    ino: s.ino,
    digest: sha256(content),
    ...(chunkBytes === undefined ? {} : { chunkBytes }),
  });
  return { path, body };
}

async function read(body: FileBody): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of body.open()) chunks.push(chunk);
  return Buffer.concat(chunks);
}

describe('FileBody', () => {
  it('streams the file in chunks, again on every open', async () => {
    const data = Buffer.alloc(300_000, 3);
    const { body } = bodyFor(data, 64 * 1024);
    let chunks = 0;
    for await (const chunk of body.open()) chunks += chunk.length > 0 ? 1 : 0;
    expect(chunks).toBe(5);
    expect((await read(body)).equals(data)).toBe(true);
    expect((await read(body)).equals(data)).toBe(true);
  });

  it('streams an empty file', async () => {
    const { body } = bodyFor('');
    expect((await read(body)).length).toBe(0);
  });

  it('throws FileChangedError (retryable) when the file changed after its digest was taken', async () => {
    const { path, body } = bodyFor('version 1');
    appendFileSync(path, ', and more');
    const error = await read(body).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FileChangedError);
    expect(error).toBeInstanceOf(UpsyncError);
    expect(error).toMatchObject({
      code: 'ERR_FILE_CHANGED',
      retryable: true,
      path,
      expected: { size: 9 },
      actual: { size: 19 },
    });
  });

  it('throws before the last chunk when the file changes while it is streamed', async () => {
    const { path, body } = bodyFor('a'.repeat(40), 10);
    const received: Uint8Array[] = [];
    const error = await (async () => {
      for await (const chunk of body.open()) {
        received.push(chunk);
        if (received.length === 1) writeFileSync(path, 'b'.repeat(40));
      }
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FileChangedError);
    expect(Buffer.concat(received).length).toBeLessThan(40);
  });

  it('catches a rewrite that kept size and mtime by its digest', async () => {
    const path = join(base, 'same-stamp');
    const when = new Date('2024-01-01T00:00:00Z');
    writeFileSync(path, 'same size');
    utimesSync(path, when, when);
    const s = statSync(path);
    const body = new FileBody({
      path,
      size: s.size,
      mtimeMs: s.mtimeMs,
      ino: s.ino,
      digest: sha256('same size'),
      chunkBytes: 4,
    });
    writeFileSync(path, 'SAME SIZE');
    utimesSync(path, when, when);
    expect(statSync(path).mtimeMs).toBe(s.mtimeMs);
    const received: Uint8Array[] = [];
    const error = await (async () => {
      for await (const chunk of body.open()) received.push(chunk);
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FileChangedError);
    expect(Buffer.concat(received).length).toBeLessThan(9);
  });

  it('throws FileGoneError when the file was deleted', async () => {
    const { path, body } = bodyFor('bye');
    unlinkSync(path);
    const error = await read(body).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FileGoneError);
    expect(error).toMatchObject({ code: 'ERR_FILE_GONE', retryable: false, path });
  });

  it('round-trips through the outbox reference, checking size and mtime without the inode', async () => {
    const { body } = bodyFor('referenced');
    const reference = body.toReference();
    expect(reference).toEqual({
      type: 'file',
      path: body.path,
      size: 10,
      mtimeMs: body.mtimeMs,
      digest: sha256('referenced'),
    });
    const rebuilt = FileBody.fromReference(reference);
    expect(rebuilt.ino).toBeUndefined();
    expect((await read(rebuilt)).toString()).toBe('referenced');
  });

  it('throws a TypeError showing a bad option', () => {
    const ok = { path: '/x', size: 1, mtimeMs: 1, digest: 'a'.repeat(64) };
    expect(() => new FileBody({ ...ok, size: -1 })).toThrow(/size must be an integer >= 0, got -1/);
    expect(() => new FileBody({ ...ok, digest: 'ABC' })).toThrow(/got "ABC"/);
    expect(() => new FileBody({ ...ok, path: '' })).toThrow(/path must be a non-empty string/);
  });
});
