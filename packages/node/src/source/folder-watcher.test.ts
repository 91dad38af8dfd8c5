import {
  appendFileSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FolderWatcher, type FolderChange, type FolderWatcherOptions } from './folder-watcher.ts';
import type { SkippedEntry } from './scan-folder.ts';

// Integration tests on real file-system events: poll for what is expected with
// a generous deadline, and assert nothing about timing.
const base = mkdtempSync(join(tmpdir(), 'upsync-watch-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));
let folders = 0;

async function until(check: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function start(
  options: Partial<FolderWatcherOptions> = {},
  files: Record<string, string> = {},
): Promise<{
  root: string;
  watcher: FolderWatcher;
  changes: FolderChange[];
  skipped: SkippedEntry[];
  has: (kind: string, key: string) => boolean;
}> {
  const root = join(base, `w${++folders}`);
  mkdirSync(root);
  for (const [key, content] of Object.entries(files)) {
    mkdirSync(join(root, key, '..'), { recursive: true });
    writeFileSync(join(root, key), content);
  }
  const changes: FolderChange[] = [];
  const skipped: SkippedEntry[] = [];
  const watcher = new FolderWatcher({
    root,
    onChange: (change) => changes.push(change),
    onSkip: (entry) => skipped.push(entry),
    ...options,
  });
  await watcher.ready();
  const has = (kind: string, key: string): boolean =>
    changes.some((c) => c.kind === kind && c.key === key);
  return { root, watcher, changes, skipped, has };
}

describe('FolderWatcher', () => {
  it('reports added, changed and deleted files as put and delete, not the files already there', async () => {
    const { root, watcher, changes, has } = await start({}, { 'old.txt': 'old' });
    try {
      writeFileSync(join(root, 'new.txt'), '1');
      await until(() => has('put', 'new.txt'), 'the add');
      const puts = changes.length;
      appendFileSync(join(root, 'new.txt'), '2');
      await until(() => changes.length > puts && has('put', 'new.txt'), 'the change');
      mkdirSync(join(root, 'sub', 'deeper'), { recursive: true });
      writeFileSync(join(root, 'sub', 'deeper', 'x.log'), 'x');
      await until(() => has('put', 'sub/deeper/x.log'), 'a file in a new folder');
      unlinkSync(join(root, 'new.txt'));
      await until(() => has('delete', 'new.txt'), 'the delete');
      expect(changes.find((c) => c.key === 'sub/deeper/x.log')).toEqual({
        key: 'sub/deeper/x.log',
        kind: 'put',
        path: join(root, 'sub', 'deeper', 'x.log'),
      });
      expect(has('put', 'old.txt')).toBe(false);
    } finally {
      await watcher.close();
    }
  });

  it('reports every rewrite of a file rewritten in a burst (no stability wait)', async () => {
    const { root, watcher, changes } = await start({}, { 'session.jsonl': '' });
    try {
      for (let i = 0; i < 5; i++) {
        appendFileSync(join(root, 'session.jsonl'), `line ${i}\n`);
        await until(
          () => changes.filter((c) => c.key === 'session.jsonl').length > i,
          `rewrite ${i}`,
        );
      }
    } finally {
      await watcher.close();
    }
  });

  it('applies the scanner rules: .git, the state folder, globs, links, NFC keys', async () => {
    const { root, watcher, changes, skipped, has } = await start({ exclude: ['*.tmp'] });
    try {
      mkdirSync(join(root, '.git'));
      mkdirSync(join(root, '.upsync'));
      writeFileSync(join(root, '.git', 'index'), 'x');
      writeFileSync(join(root, '.upsync', 'digests.db'), 'x');
      writeFileSync(join(root, 'scratch.tmp'), 'x');
      symlinkSync(join(root, 'scratch.tmp'), join(root, 'link.txt'));
      writeFileSync(join(root, 'cafe\u0301.txt'), 'x');
      writeFileSync(join(root, 'back\\slash.txt'), 'x');
      writeFileSync(join(root, 'last.txt'), 'x');
      await until(
        () => has('put', 'last.txt') && has('put', 'caf\u00e9.txt'),
        'the accepted files',
      );
      await until(() => skipped.length >= 2, 'the skipped files');
      expect(changes.map((c) => c.key).sort()).toEqual(['caf\u00e9.txt', 'last.txt']);
      expect(changes.find((c) => c.key === 'caf\u00e9.txt')?.path).toBe(
        join(root, 'cafe\u0301.txt'),
      );
      expect(skipped.map((s) => [s.key, s.code]).sort()).toEqual([
        ['back\\slash.txt', 'BAD_KEY'],
        ['link.txt', 'SYMLINK'],
      ]);
    } finally {
      await watcher.close();
    }
  });

  it('applies include globs, and a state folder given elsewhere', async () => {
    const { root, watcher, changes, has } = await start({
      include: ['*.jsonl'],
      stateDir: join(base, 'w-state'),
    });
    try {
      writeFileSync(join(root, 'a.txt'), 'x');
      mkdirSync(join(root, '.upsync'));
      writeFileSync(join(root, '.upsync', 'b.jsonl'), 'x');
      writeFileSync(join(root, 'c.jsonl'), 'x');
      await until(
        () => has('put', 'c.jsonl') && has('put', '.upsync/b.jsonl'),
        'the included files',
      );
      expect(changes.map((c) => c.key).sort()).toEqual(['.upsync/b.jsonl', 'c.jsonl']);
    } finally {
      await watcher.close();
    }
  });

  it('reports nothing after close, and close is idempotent', async () => {
    const { root, watcher, changes } = await start();
    await watcher.close();
    await watcher[Symbol.asyncDispose]();
    writeFileSync(join(root, 'late.txt'), 'x');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(changes).toEqual([]);
    await expect(watcher.ready()).rejects.toThrow(/closed/);
  });

  it('throws a TypeError showing a bad option', () => {
    expect(() => new FolderWatcher({ root: base, onChange: 'x' as never })).toThrow(
      /onChange must be a function, got string/,
    );
    expect(
      () => new FolderWatcher({ root: base, onChange: () => {}, followSymlinks: 1 as never }),
    ).toThrow(/got 1/);
  });
});
