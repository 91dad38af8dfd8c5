import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { FolderChange } from './folder-watcher.ts';
import { FolderSource, type FolderSourceOptions, type SourceItem } from './folder-source.ts';
import type { OpenFile } from './hash-file.ts';
import { nodeScanFs, type ScanFs } from './scan-folder.ts';

const base = mkdtempSync(join(tmpdir(), 'upsync-source-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));
let folders = 0;
const sha256 = (data: string): string => createHash('sha256').update(data).digest('hex');

/** Writes files with an mtime in the past, as a folder that was not just written looks. */
function write(root: string, key: string, content: string): void {
  const path = join(root, ...key.split('/'));
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, content);
  const past = new Date(Date.now() - 60_000 + folders);
  utimesSync(path, past, past);
}

function folder(files: Record<string, string>): string {
  const root = join(base, `s${++folders}`);
  mkdirSync(root);
  for (const [key, content] of Object.entries(files)) write(root, key, content);
  return root;
}

function counting(): { open: OpenFile; opened: string[] } {
  const opened: string[] = [];
  return { opened, open: (path) => (opened.push(path), open(path, 'r')) };
}

async function collect(source: FolderSource, knownKeys?: Iterable<string>): Promise<SourceItem[]> {
  const items: SourceItem[] = [];
  for await (const item of source.scan(knownKeys === undefined ? {} : { knownKeys }))
    items.push(item);
  return items;
}

async function readAll(body: { open(): AsyncIterable<Uint8Array> }): Promise<string> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of body.open()) chunks.push(chunk);
  return Buffer.concat(chunks).toString();
}

function source(root: string, options: Partial<FolderSourceOptions> = {}): FolderSource {
  return new FolderSource({ root, ...options });
}

describe('FolderSource', () => {
  it('scans files in key order with bodies whose digests match their content', async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 50; i++)
      files[`logs/${String(i).padStart(2, '0')}.jsonl`] = `session ${i}\n`;
    const root = folder({ ...files, 'README.md': 'hello' });
    await using src = source(root);
    const items = await collect(src);
    expect(items.map((i) => i.key)).toEqual(['README.md', ...Object.keys(files)]);
    const readme = items[0]!;
    expect(readme.type).toBe('file');
    if (readme.type !== 'file') return;
    expect(readme.body).toMatchObject({
      size: 5,
      digest: sha256('hello'),
      path: join(root, 'README.md'),
    });
    expect(await readAll(readme.body)).toBe('hello');
  });

  it('reads no file on a second scan of an unchanged folder, and only changed files after', async () => {
    const root = folder({ 'a.txt': 'a', 'b/c.txt': 'c', 'd.txt': 'd' });
    const first = counting();
    const src1 = source(root, { open: first.open });
    expect((await collect(src1)).every((i) => i.type === 'file' && !i.cached)).toBe(true);
    expect(first.opened).toHaveLength(3);
    await src1.close();

    const second = counting();
    const src2 = source(root, { open: second.open });
    const again = await collect(src2);
    expect(again.every((i) => i.type === 'file' && i.cached)).toBe(true);
    expect(second.opened).toEqual([]);
    expect(src2.cache.stats).toMatchObject({ hits: 3, filesRead: 0 });

    write(root, 'b/c.txt', 'changed');
    const third = await collect(src2);
    expect(second.opened).toEqual([join(root, 'b', 'c.txt')]);
    expect(third.find((i) => i.key === 'b/c.txt')).toMatchObject({
      cached: false,
      body: { digest: sha256('changed') },
    });
    await src2.close();
  });

  it('keeps its digest cache in the state folder and never scans that folder', async () => {
    const root = folder({ 'a.txt': 'a' });
    await using src = source(root);
    await collect(src);
    expect(src.cache.path).toBe(join(root, '.upsync', 'digests.db'));
    expect((await collect(src)).map((i) => i.key)).toEqual(['a.txt']);
    const elsewhere = join(base, `state-${folders}`);
    await using other = source(root, { stateDir: elsewhere });
    expect(other.cache.path).toBe(join(elsewhere, 'digests.db'));
    // With the state elsewhere, a folder named .upsync is ordinary content.
    const keys = (await collect(other)).map((i) => i.key);
    expect(keys).toContain('.upsync/digests.db');
    expect(keys).toContain('a.txt');
  });

  it('yields known keys the folder no longer has as deletions, except under unreadable folders', async () => {
    const root = folder({ 'keep.txt': 'k', 'locked/inside.txt': 'i', 'gone-dir/x.txt': 'x' });
    const fs: ScanFs = {
      ...nodeScanFs,
      readdir: (path) =>
        path.endsWith('locked')
          ? Promise.reject(
              Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' }),
            )
          : nodeScanFs.readdir(path),
    };
    rmSync(join(root, 'gone-dir'), { recursive: true });
    await using src = source(root, { fs, exclude: ['*.bak'] });
    const items = await collect(src, [
      'keep.txt',
      'locked/inside.txt',
      'gone-dir/x.txt',
      'zz.txt',
      'old.bak',
    ]);
    expect(items.map((i) => [i.type, i.key])).toEqual([
      ['file', 'keep.txt'],
      ['skipped', 'locked'],
      ['deleted', 'gone-dir/x.txt'],
      ['deleted', 'zz.txt'],
    ]);
  });

  it('gives one file by key, null when it is absent, with the NFD path the disk has', async () => {
    const root = folder({ 'cafe\u0301/menu.txt': 'soup' });
    await using src = source(root);
    await collect(src);
    const file = await src.file('caf\u00e9/menu.txt');
    expect(file).toMatchObject({
      type: 'file',
      key: 'caf\u00e9/menu.txt',
      body: { digest: sha256('soup') },
    });
    expect(file?.type === 'file' && file.body.path).toBe(join(root, 'cafe\u0301', 'menu.txt'));
    expect(await src.file('nope.txt')).toBeNull();
    expect(await src.file('.upsync/digests.db')).toBeNull();
  });

  it('gives a fresh body to requeue after the file changed under an old one', async () => {
    const root = folder({ 'log.jsonl': 'v1' });
    await using src = source(root);
    const [item] = await collect(src);
    write(root, 'log.jsonl', 'version 2');
    expect(
      item?.type === 'file' && (await readAll(item.body).catch((e: unknown) => e)),
    ).toMatchObject({
      code: 'ERR_FILE_CHANGED',
    });
    const fresh = await src.file('log.jsonl');
    expect(fresh?.type === 'file' && (await readAll(fresh.body))).toBe('version 2');
  });

  it('watches: puts and deletes for files, none for the state folder', async () => {
    const root = folder({});
    await using src = source(root);
    const changes: FolderChange[] = [];
    await src.watch((change) => changes.push(change));
    await collect(src); // writes .upsync/digests.db, which must not be reported
    writeFileSync(join(root, 'new.txt'), 'n');
    const deadline = Date.now() + 5_000;
    while (!changes.some((c) => c.key === 'new.txt') && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    unlinkSync(join(root, 'new.txt'));
    while (!changes.some((c) => c.kind === 'delete') && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(changes.map((c) => [c.kind, c.key])).toContainEqual(['put', 'new.txt']);
    expect(changes.map((c) => [c.kind, c.key])).toContainEqual(['delete', 'new.txt']);
    expect(changes.every((c) => c.key === 'new.txt')).toBe(true);
  });

  it('throws a TypeError showing a bad option', () => {
    expect(() => new FolderSource({ root: '' })).toThrow(/root must be a non-empty string, got ""/);
    expect(() => new FolderSource({ root: base, hashConcurrency: 0 })).toThrow(/got 0/);
  });
});
