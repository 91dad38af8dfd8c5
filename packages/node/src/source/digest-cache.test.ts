import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { ClosedError, StateError } from '@upsync/core';
import { afterAll, describe, expect, it } from 'vitest';
import { DigestCache } from './digest-cache.ts';
import type { OpenFile } from './hash-file.ts';

const base = mkdtempSync(join(tmpdir(), 'upsync-digests-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));
let folders = 0;
const sha256 = (data: string): string => createHash('sha256').update(data).digest('hex');

/** A folder with files whose mtimes lie safely in the past (outside the racy window). */
function setup(files: Record<string, string>): {
  root: string;
  db: string;
  stamp: (key: string) => { size: number; mtimeMs: number; ino: number };
} {
  const root = join(base, `r${++folders}`);
  mkdirSync(root);
  const past = new Date(Date.now() - 60_000);
  for (const [key, content] of Object.entries(files)) {
    writeFileSync(join(root, key), content);
    utimesSync(join(root, key), past, past);
  }
  const stamp = (key: string) => {
    const s = statSync(join(root, key));
    return { size: s.size, mtimeMs: s.mtimeMs, ino: s.ino };
  };
  return { root, db: join(root, '.upsync', 'digests.db'), stamp };
}

function counting(): { open: OpenFile; opened: string[] } {
  const opened: string[] = [];
  return { opened, open: (path) => (opened.push(path), open(path, 'r')) };
}

describe('DigestCache', () => {
  it('reads a file once, and never again while its stamp is unchanged, across reopening', async () => {
    const { root, db, stamp } = setup({ 'a.txt': 'alpha', 'b.txt': 'beta' });
    const first = counting();
    const cache = new DigestCache({ path: db, root, open: first.open });
    const a = await cache.digest('a.txt', join(root, 'a.txt'), stamp('a.txt'));
    expect(a).toMatchObject({ digest: sha256('alpha'), size: 5, cached: false });
    expect(await cache.digest('a.txt', join(root, 'a.txt'), stamp('a.txt'))).toMatchObject({
      cached: true,
    });
    await cache.digest('b.txt', join(root, 'b.txt'), stamp('b.txt'));
    expect(first.opened).toHaveLength(2);
    expect(cache.stats).toEqual({ hits: 1, misses: 2, filesRead: 2, bytesRead: 9 });
    await cache.close();

    const second = counting();
    await using again = new DigestCache({ path: db, root, open: second.open });
    expect(await again.digest('a.txt', join(root, 'a.txt'), stamp('a.txt'))).toMatchObject({
      digest: sha256('alpha'),
      cached: true,
    });
    expect(await again.digest('b.txt', join(root, 'b.txt'), stamp('b.txt'))).toMatchObject({
      cached: true,
    });
    expect(second.opened).toEqual([]);
  });

  it('reads a file again when its size, mtime or inode changed', async () => {
    const { root, db, stamp } = setup({ 'a.txt': 'alpha' });
    const counter = counting();
    await using cache = new DigestCache({ path: db, root, open: counter.open });
    const path = join(root, 'a.txt');
    await cache.digest('a.txt', path, stamp('a.txt'));
    const before = stamp('a.txt');
    expect(cache.get('a.txt', { ...before, size: before.size + 1 })).toBeUndefined();
    expect(cache.get('a.txt', { ...before, mtimeMs: before.mtimeMs + 1 })).toBeUndefined();
    expect(cache.get('a.txt', { ...before, ino: before.ino + 1 })).toBeUndefined();
    writeFileSync(path, 'ALPHA');
    const past = new Date(Date.now() - 30_000);
    utimesSync(path, past, past);
    expect(await cache.digest('a.txt', path, stamp('a.txt'))).toMatchObject({
      digest: sha256('ALPHA'),
      cached: false,
    });
    expect(counter.opened).toHaveLength(2);
  });

  it('does not trust a digest taken within the racy window of the mtime', async () => {
    const { root, db, stamp } = setup({ 'a.txt': 'alpha' });
    const s = stamp('a.txt');
    await using cache = new DigestCache({ path: db, root, racyWindowMs: 10 });
    cache.set('a.txt', s, sha256('alpha'), s.mtimeMs + 5);
    expect(cache.get('a.txt', s)).toBeUndefined();
    cache.set('a.txt', s, sha256('alpha'), s.mtimeMs + 11);
    expect(cache.get('a.txt', s)).toBe(sha256('alpha'));
  });

  it('keeps roots apart and drops keys a scan no longer finds', async () => {
    const { root, db, stamp } = setup({ 'a.txt': 'alpha', 'b.txt': 'beta' });
    const s = stamp('a.txt');
    await using cache = new DigestCache({ path: db, root, now: () => s.mtimeMs + 60_000 });
    await using other = new DigestCache({ path: db, root: join(root, 'elsewhere') });
    cache.set('a.txt', s, 'a'.repeat(64), s.mtimeMs + 1_000);
    cache.set('b.txt', stamp('b.txt'), 'b'.repeat(64), s.mtimeMs + 1_000);
    expect(other.get('a.txt', s)).toBeUndefined();
    expect(cache.retainOnly(new Set(['b.txt']))).toBe(1);
    expect(cache.get('a.txt', s)).toBeUndefined();
    expect(cache.get('b.txt', stamp('b.txt'))).toBe('b'.repeat(64));
    cache.delete('b.txt');
    expect(cache.get('b.txt', stamp('b.txt'))).toBeUndefined();
  });

  it('replaces a damaged cache file instead of failing (it is only a cache)', async () => {
    const { root, db, stamp } = setup({ 'a.txt': 'alpha' });
    mkdirSync(join(root, '.upsync'));
    writeFileSync(db, 'this is not a database'.repeat(100));
    await using cache = new DigestCache({ path: db, root });
    expect(await cache.digest('a.txt', join(root, 'a.txt'), stamp('a.txt'))).toMatchObject({
      cached: false,
    });
  });

  it('uses WAL, and reports an unusable state folder as a StateError', async () => {
    const { root, db } = setup({});
    const cache = new DigestCache({ path: db, root });
    const raw = new DatabaseSync(db);
    expect(raw.prepare('PRAGMA journal_mode').get()).toEqual({ journal_mode: 'wal' });
    raw.close();
    await cache.close();
    expect(() => cache.get('a', { size: 1, mtimeMs: 1, ino: 1 })).toThrow(ClosedError);
    writeFileSync(join(root, 'plain-file'), '');
    expect(() => new DigestCache({ path: join(root, 'plain-file', 'digests.db'), root })).toThrow(
      StateError,
    );
  });

  it('throws a TypeError showing a bad option', () => {
    expect(() => new DigestCache({ path: '', root: '/x' })).toThrow(
      /path must be a non-empty string, got ""/,
    );
    expect(() => new DigestCache({ path: '/x/d.db', root: '/x', racyWindowMs: -1 })).toThrow(
      /got -1/,
    );
  });
});
