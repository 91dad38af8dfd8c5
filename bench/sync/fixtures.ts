// The folders the scenarios mirror: random bytes (nothing compresses or dedupes), spread over
// subfolders of 100 files like a real tree.
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { once } from 'node:events';

const FILES_PER_FOLDER = 100;
const WRITE_CHUNK_BYTES = 8 * 1024 * 1024;

export function fixturePath(dir: string, index: number): string {
  const folder = `d${String(Math.floor(index / FILES_PER_FOLDER)).padStart(3, '0')}`;
  return join(dir, folder, `f${String(index).padStart(5, '0')}.bin`);
}

async function writeRandom(path: string, size: number): Promise<void> {
  if (size <= WRITE_CHUNK_BYTES) {
    await writeFile(path, randomBytes(size));
    return;
  }
  const out = createWriteStream(path);
  for (let written = 0; written < size; written += WRITE_CHUNK_BYTES) {
    if (!out.write(randomBytes(Math.min(WRITE_CHUNK_BYTES, size - written)))) {
      await once(out, 'drain');
    }
  }
  out.end();
  await once(out, 'close');
}

/** Writes `count` files of `size` random bytes under `dir`. */
export async function makeFiles(dir: string, count: number, size: number): Promise<void> {
  for (let index = 0; index < count; index++) {
    const path = fixturePath(dir, index);
    if (index % FILES_PER_FOLDER === 0) await mkdir(dirname(path), { recursive: true });
    await writeRandom(path, size);
  }
}

/** New random content (same size) for the files at `indexes`. */
export async function changeFiles(
  dir: string,
  indexes: readonly number[],
  size: number,
): Promise<void> {
  for (const index of indexes) await writeRandom(fixturePath(dir, index), size);
}

/**
 * `share` of `count` files, a different slice for each `slot`, so every contender of a round
 * gets files the server it talks to has not seen yet.
 */
export function sliceToChange(count: number, share: number, slot: number): number[] {
  const size = Math.max(1, Math.round(count * share));
  const start = (slot * size) % count;
  return Array.from({ length: size }, (_, offset) => (start + offset) % count);
}
