import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, compareKeys } from '@upsync/core';
import { afterAll, describe, expect, it } from 'vitest';
import {
  nodeScanFs,
  scanFolder,
  type ScanEntry,
  type ScanFolderOptions,
  type ScanFs,
} from './scan-folder.ts';

const base = mkdtempSync(join(tmpdir(), 'upsync-scan-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));
let folders = 0;

/** A fresh folder holding `files` (key -> content; a trailing "/" makes an empty folder). */
function tree(files: Record<string, string>): string {
  const root = join(base, `t${++folders}`);
  mkdirSync(root);
  for (const [key, content] of Object.entries(files)) {
    const path = join(root, ...key.split('/'));
    if (key.endsWith('/')) {
      mkdirSync(path, { recursive: true });
    } else {
      mkdirSync(join(path, '..'), { recursive: true });
      writeFileSync(path, content);
    }
  }
  return root;
}

async function scan(options: ScanFolderOptions): Promise<ScanEntry[]> {
  const entries: ScanEntry[] = [];
  for await (const entry of scanFolder(options)) entries.push(entry);
  return entries;
}

const keysOf = (entries: ScanEntry[], type: ScanEntry['type'] = 'file'): string[] =>
  entries.filter((e) => e.type === type).map((e) => e.key);

describe('scanFolder', () => {
  it('yields regular files with POSIX keys, size, mtime and inode, in key order', async () => {
    const root = tree({
      'b.txt': 'bb',
      'a/b': '1',
      'a-c': '22',
      'a/z/deep.txt': 'deep',
      '\u{1F600}.txt': 'emoji',
      '\uFB00.txt': 'ligature',
      'empty/': '',
    });
    const entries = await scan({ root });
    const keys = keysOf(entries);
    expect(keys).toEqual(['a-c', 'a/b', 'a/z/deep.txt', 'b.txt', '\uFB00.txt', '\u{1F600}.txt']);
    expect([...keys].sort(compareKeys)).toEqual(keys);
    const deep = entries.find((e) => e.key === 'a/z/deep.txt');
    expect(deep).toMatchObject({ type: 'file', path: join(root, 'a', 'z', 'deep.txt'), size: 4 });
    expect(deep?.type === 'file' && deep.ino > 0 && deep.mtimeMs > 0).toBe(true);
  });

  it('gives NFC keys for NFD names, keeps the disk name as the path, and reports NFC twins', async () => {
    const nfd = 'cafe\u0301';
    const root = tree({
      [`${nfd}/menu.txt`]: 'x',
      'twin\u00e9.txt': 'nfc',
      'twine\u0301.txt': 'nfd',
    });
    const entries = await scan({ root });
    expect(entries.find((e) => e.key === 'caf\u00e9/menu.txt')).toMatchObject({
      type: 'file',
      path: join(root, nfd, 'menu.txt'),
    });
    expect(keysOf(entries)).toContain('twin\u00e9.txt');
    expect(entries.find((e) => e.type === 'file' && e.key === 'twin\u00e9.txt')).toMatchObject({
      path: join(root, 'twin\u00e9.txt'),
    });
    expect(entries.filter((e) => e.type === 'skipped')).toEqual([
      expect.objectContaining({
        key: 'twin\u00e9.txt',
        code: 'DUPLICATE_KEY',
        path: join(root, 'twine\u0301.txt'),
      }),
    ]);
  });

  it('reports a name that is not UTF-8 as skipped, and goes on', async () => {
    const root = tree({ 'ok.txt': 'ok' });
    writeFileSync(
      Buffer.concat([Buffer.from(`${root}/bad-`), Buffer.from([0xff, 0xfe]), Buffer.from('.txt')]),
      'x',
    );
    const entries = await scan({ root });
    expect(keysOf(entries)).toEqual(['ok.txt']);
    const skipped = entries.filter((e) => e.type === 'skipped');
    expect(skipped).toEqual([
      expect.objectContaining({ code: 'BAD_NAME', key: 'bad-\uFFFD\uFFFD.txt' }),
    ]);
    expect(skipped[0]?.reason).toMatch(/UTF-8/);
  });

  it('reports keys the protocol would refuse as skipped', async () => {
    const long = 'd'.repeat(250);
    const root = tree({
      'back\\slash.txt': 'x',
      'tab\there.txt': 'x',
      [`${long}/${long}/${long}/${long}/ok.txt`]: 'x',
      [`${long}/${long}/${long}/${long}/${'f'.repeat(60)}`]: 'x',
      'fine.txt': 'x',
    });
    const entries = await scan({ root });
    expect(keysOf(entries)).toEqual([`${long}/${long}/${long}/${long}/ok.txt`, 'fine.txt']);
    const skipped = entries.filter((e) => e.type === 'skipped');
    expect(skipped.map((e) => [e.type === 'skipped' && e.code, e.key.length])).toEqual([
      ['BAD_KEY', 'back\\slash.txt'.length],
      ['BAD_KEY', 1064],
      ['BAD_KEY', 'tab\there.txt'.length],
    ]);
  });

  it('never scans .git or the state folder, and applies include/exclude globs', async () => {
    const root = tree({
      '.git/HEAD': 'ref',
      '.upsync/digests.db': 'db',
      'state/outbox.db': 'db',
      'logs/a.jsonl': '1',
      'logs/a.tmp': '1',
      'logs/old/b.jsonl': '1',
      'notes.md': '1',
      '.env': '1',
    });
    expect(keysOf(await scan({ root }))).toEqual([
      '.env',
      'logs/a.jsonl',
      'logs/a.tmp',
      'logs/old/b.jsonl',
      'notes.md',
      'state/outbox.db',
    ]);
    expect(keysOf(await scan({ root, stateDir: join(root, 'state') }))).toEqual([
      '.env',
      '.upsync/digests.db',
      'logs/a.jsonl',
      'logs/a.tmp',
      'logs/old/b.jsonl',
      'notes.md',
    ]);
    expect(keysOf(await scan({ root, include: ['*.jsonl'], exclude: ['old'] }))).toEqual([
      'logs/a.jsonl',
    ]);
  });

  it('skips symbolic links by default and follows them when asked, stopping at loops', async () => {
    const outside = tree({ 'target.txt': 'outside', 'dir/inner.txt': 'inner' });
    const root = tree({ 'real.txt': 'real', 'sub/x.txt': 'x' });
    symlinkSync(join(outside, 'target.txt'), join(root, 'link.txt'));
    symlinkSync(join(outside, 'dir'), join(root, 'linkdir'));
    symlinkSync(root, join(root, 'sub', 'loop'));
    symlinkSync(join(root, 'missing'), join(root, 'broken'));

    const plain = await scan({ root });
    expect(keysOf(plain)).toEqual(['real.txt', 'sub/x.txt']);
    expect(
      plain.filter((e) => e.type === 'skipped').map((e) => [e.key, e.type === 'skipped' && e.code]),
    ).toEqual([
      ['broken', 'SYMLINK'],
      ['link.txt', 'SYMLINK'],
      ['linkdir', 'SYMLINK'],
      ['sub/loop', 'SYMLINK'],
    ]);

    const followed = await scan({ root, followSymlinks: true });
    expect(keysOf(followed)).toEqual(['link.txt', 'linkdir/inner.txt', 'real.txt', 'sub/x.txt']);
    expect(followed.find((e) => e.key === 'link.txt')).toMatchObject({ size: 'outside'.length });
    expect(
      followed
        .filter((e) => e.type === 'skipped')
        .map((e) => [e.key, e.type === 'skipped' && e.code, e.type === 'skipped' && e.folder]),
    ).toEqual([
      ['broken', 'UNREADABLE', false],
      ['sub/loop', 'SYMLINK_LOOP', true],
    ]);
  });

  it('reports folders and files it may not read, with the errno, and goes on', async () => {
    const root = tree({
      'a.txt': 'a',
      'locked/secret.txt': 's',
      'z/hidden.txt': 'h',
      'z/ok.txt': 'ok',
    });
    const denied = (path: string): Error =>
      Object.assign(new Error(`EACCES: permission denied, scandir '${path}'`), { code: 'EACCES' });
    const fs: ScanFs = {
      ...nodeScanFs,
      readdir: (path) =>
        path.endsWith('locked') ? Promise.reject(denied(path)) : nodeScanFs.readdir(path),
      lstat: (path) =>
        path.endsWith('hidden.txt') ? Promise.reject(denied(path)) : nodeScanFs.lstat(path),
    };
    const entries = await scan({ root, fs });
    expect(keysOf(entries)).toEqual(['a.txt', 'z/ok.txt']);
    expect(entries.filter((e) => e.type === 'skipped')).toEqual([
      expect.objectContaining({ key: 'locked', folder: true, code: 'UNREADABLE', errno: 'EACCES' }),
      expect.objectContaining({
        key: 'z/hidden.txt',
        folder: false,
        code: 'UNREADABLE',
        errno: 'EACCES',
      }),
    ]);
  });

  it.skipIf(process.getuid?.() === 0)('reports a real chmod 000 folder as unreadable', async () => {
    const root = tree({ 'a.txt': 'a', 'locked/secret.txt': 's' });
    chmodSync(join(root, 'locked'), 0o000);
    try {
      const entries = await scan({ root });
      expect(entries.find((e) => e.key === 'locked')).toMatchObject({
        code: 'UNREADABLE',
        errno: 'EACCES',
      });
    } finally {
      chmodSync(join(root, 'locked'), 0o755);
    }
  });

  it('throws a ConfigError for a root that is missing or not a folder', async () => {
    await expect(scan({ root: join(base, 'missing') })).rejects.toThrow(ConfigError);
    const root = tree({ 'file.txt': 'x' });
    await expect(scan({ root: join(root, 'file.txt') })).rejects.toThrow(/is not a folder/);
  });

  it('rejects with the signal reason when aborted', async () => {
    const root = tree({ 'a/1': '1', 'b/2': '2' });
    const controller = new AbortController();
    const reason = new Error('stop');
    const seen: string[] = [];
    await expect(
      (async () => {
        for await (const entry of scanFolder({ root, signal: controller.signal })) {
          seen.push(entry.key);
          controller.abort(reason);
        }
      })(),
    ).rejects.toBe(reason);
    expect(seen).toEqual(['a/1']);
  });
});
