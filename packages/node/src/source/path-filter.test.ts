import { join } from 'node:path';
import { ConfigError } from '@upsync/core';
import { describe, expect, it } from 'vitest';
import { PathFilter } from './path-filter.ts';

const root = '/data/project';

describe('PathFilter', () => {
  it('leaves out the root upsync.config.json only, not one in a subfolder', () => {
    const filter = new PathFilter({ root: '/data' });
    expect(filter.accepts('upsync.config.json')).toBe(false);
    expect(filter.accepts('projects/upsync.config.json')).toBe(true);
  });

  it('always leaves out .git at any depth and the state folder inside the root', () => {
    const filter = new PathFilter({ root, stateDir: join(root, '.upsync') });
    expect(filter.stateKey).toBe('.upsync');
    expect(filter.accepts('.git/config')).toBe(false);
    expect(filter.accepts('vendor/lib/.git/HEAD')).toBe(false);
    expect(filter.accepts('vendor/lib/.git')).toBe(false); // a submodule's .git file
    expect(filter.accepts('.upsync/digests.db')).toBe(false);
    expect(filter.accepts('sub/.upsync/x')).toBe(true); // only the real state folder
    expect(filter.accepts('.gitignore')).toBe(true);
    expect(filter.accepts('.env')).toBe(true);
  });

  it('leaves out a state folder elsewhere in the tree, and none outside it', () => {
    expect(new PathFilter({ root, stateDir: join(root, 'var/state') }).accepts('var/state/a')).toBe(
      false,
    );
    expect(new PathFilter({ root, stateDir: '/elsewhere/state' }).stateKey).toBeUndefined();
    expect(() => new PathFilter({ root, stateDir: root })).toThrow(ConfigError);
  });

  it('reads a pattern without "/" as a name at any depth, and a leading "/" as anchored', () => {
    const filter = new PathFilter({
      root,
      exclude: ['*.tmp', 'node_modules', '/build', 'docs/**/*.pdf'],
    });
    expect(filter.accepts('a.tmp')).toBe(false);
    expect(filter.accepts('deep/er/a.tmp')).toBe(false);
    expect(filter.accepts('node_modules/x/index.js')).toBe(false);
    expect(filter.accepts('pkg/node_modules/x/index.js')).toBe(false);
    expect(filter.excludes('pkg/node_modules')).toBe(true);
    expect(filter.accepts('build/out.js')).toBe(false);
    expect(filter.accepts('src/build/out.js')).toBe(true);
    expect(filter.accepts('docs/a/b/c.pdf')).toBe(false);
    expect(filter.accepts('docs/a/b/c.md')).toBe(true);
  });

  it('includes a file whose key or folder matches an include glob', () => {
    const filter = new PathFilter({ root, include: ['*.jsonl', 'notes'], exclude: ['old'] });
    expect(filter.accepts('s/1.jsonl')).toBe(true);
    expect(filter.accepts('s/1.txt')).toBe(false);
    expect(filter.accepts('notes/a/b.md')).toBe(true);
    expect(filter.accepts('old/1.jsonl')).toBe(false);
  });

  it('normalises patterns to NFC, as keys are', () => {
    const filter = new PathFilter({ root, exclude: ['cafe\u0301'] });
    expect(filter.accepts('caf\u00e9/menu.txt')).toBe(false);
  });

  it('throws a TypeError showing a bad option', () => {
    expect(() => new PathFilter({ root: '' })).toThrow(/root must be a non-empty string, got ""/);
    expect(() => new PathFilter({ root, exclude: '*.tmp' as unknown as string[] })).toThrow(
      /exclude must be an array of glob strings, got "\*\.tmp"/,
    );
    expect(() => new PathFilter({ root, include: [''] })).toThrow(/got ""/);
  });
});
