import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { StateError } from '@upsync/core';
import { ManualClock } from '@upsync/core/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteOutboxStore } from '../outbox/sqlite-store.ts';
import {
  alignColumns,
  formatBytes,
  OUTBOX_FILE,
  resolveTarget,
  StateReader,
  timeAgo,
} from './state-inspect.ts';

const root = mkdtempSync(join(tmpdir(), 'upsync-inspect-'));
let folders = 0;
afterAll(() => rmSync(root, { recursive: true, force: true }));
function folder(): string {
  const dir = join(root, `s${++folders}`);
  mkdirSync(dir);
  return dir;
}

describe('StateReader', () => {
  it('is null for a folder without an outbox, and creates nothing', () => {
    const dir = folder();
    expect(StateReader.open(dir)).toBeNull();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('counts pending, live leases, dead letters, drops and synced rows per scope', async () => {
    const dir = folder();
    const clock = new ManualClock({ startMs: 1_000_000 });
    const store = new SqliteOutboxStore({ path: join(dir, OUTBOX_FILE), clock, deadLetterCap: 1 });
    const scope = { remote: 'https://r', project: 'p', principal: 'alice' };
    const put = (key: string) =>
      store.append(scope, {
        key,
        digest: 'd',
        size: 1,
        body: { type: 'bytes', bytes: new Uint8Array([1]) },
      });
    await put('a');
    await put('b');
    await put('c');
    await put('d');
    await store.claim(scope, { owner: 'o', leaseMs: 10_000, keys: ['a'] });
    await store.claim(scope, { owner: 'o', leaseMs: 100, keys: ['b'] });
    await store.deadLetter(scope, 'c', 3, { reason: 'r1', status: 400, attempts: 2 });
    await store.ack(scope, 'b', 2, { digest: 'd', size: 1 });
    await clock.advance(500);
    await store.deadLetter(scope, 'd', 4, { reason: 'r2', status: null, attempts: 1 });
    await store.close();

    using reader = StateReader.open(dir)!;
    // At 1,000,200 the lease of a (to 1,010,000) is live.
    expect(reader.scopes(1_000_200)).toEqual([
      {
        ...scope,
        pending: 1,
        inFlight: 1,
        deadLetters: 1,
        droppedDeadLetters: 1,
        syncedKeys: 1,
        lastSyncedAtMs: 1_000_000,
      },
    ]);
    expect(reader.scopes(1_010_000)[0]?.inFlight).toBe(0);
    expect(reader.deadLetters(scope)).toEqual([
      {
        key: 'd',
        seq: 4,
        kind: 'put',
        status: null,
        reason: 'r2',
        attempts: 1,
        size: 1,
        deadLetteredAtMs: 1_000_500,
      },
    ]);
    expect(reader.deadLetters({ ...scope, principal: 'bob' })).toEqual([]);
  });

  it('refuses a SQLite file that is not an upsync outbox, or a newer one, with a StateError naming it', () => {
    const foreign = folder();
    const db = new DatabaseSync(join(foreign, OUTBOX_FILE));
    db.exec('CREATE TABLE notes (text TEXT)');
    db.close();
    expect(() => StateReader.open(foreign)).toThrow(StateError);
    expect(() => StateReader.open(foreign)).toThrow(join(foreign, OUTBOX_FILE));

    const newer = folder();
    const future = new DatabaseSync(join(newer, OUTBOX_FILE));
    future.exec('PRAGMA user_version = 99');
    future.close();
    expect(() => StateReader.open(newer)).toThrow(/schema version 99/);

    const empty = folder();
    new DatabaseSync(join(empty, OUTBOX_FILE)).close();
    using reader = StateReader.open(empty)!;
    expect(reader.scopes(0)).toEqual([]);
  });
});

describe('resolveTarget', () => {
  const env = { UPSYNC_PRINCIPAL: 'alice' };

  it('gives the sending options when everything is set', () => {
    const dir = folder();
    const target = resolveTarget({ remote: 'http://r/', project: 'p' }, dir, {
      ...env,
      UPSYNC_TOKEN: 'secret',
    });
    expect(target).toMatchObject({
      stateDir: join(dir, '.upsync'),
      remote: 'http://r',
      project: 'p',
      unsent: null,
    });
    expect(target.options?.token).toBe('secret');
  });

  it('names the scope without a token, and says what is missing', () => {
    const dir = folder();
    const noToken = resolveTarget({ remote: 'http://r', project: 'p' }, dir, env);
    expect(noToken).toMatchObject({ remote: 'http://r', project: 'p', options: null });
    expect(noToken.unsent).toMatch(/token/);
    const nothing = resolveTarget({ state: join(dir, 'st') }, dir, env);
    expect(nothing).toMatchObject({
      stateDir: join(dir, 'st'),
      remote: undefined,
      project: undefined,
      options: null,
    });
    const projectOnly = resolveTarget({ project: 'p' }, dir, env);
    expect(projectOnly).toMatchObject({ remote: undefined, project: 'p' });
  });

  it('needs no usable token to find the state', () => {
    const dir = folder();
    const target = resolveTarget({}, dir, { ...env, UPSYNC_TOKEN: 'has spaces in it' });
    expect(target).toMatchObject({ stateDir: join(dir, '.upsync'), options: null });
  });

  it('still refuses a setting that is wrong', () => {
    expect(() => resolveTarget({ remote: 'ftp://r' }, folder(), env)).toThrow(/remote/);
    expect(() => resolveTarget({ attempts: '0' }, folder(), env)).toThrow(/attempts/);
  });
});

describe('the text helpers', () => {
  it('says how long ago in whole units', () => {
    const now = 10 * 86_400_000;
    expect(timeAgo(now - 2_000, now)).toBe('just now');
    expect(timeAgo(now - 59_999, now)).toBe('59 seconds ago');
    expect(timeAgo(now - 60_000, now)).toBe('1 minute ago');
    expect(timeAgo(now - 5 * 60_000 - 59_000, now)).toBe('5 minutes ago');
    expect(timeAgo(now - 3_600_000, now)).toBe('1 hour ago');
    expect(timeAgo(now - 3 * 86_400_000 + 1, now)).toBe('2 days ago');
    expect(timeAgo(now + 2 * 3_600_000, now)).toBe('in 2 hours');
  });

  it('formats sizes in binary units and aligns columns', () => {
    expect([0, 1023, 1024, 1536, 3 * 1024 * 1024].map(formatBytes)).toEqual([
      '0 B',
      '1023 B',
      '1.0 KiB',
      '1.5 KiB',
      '3.0 MiB',
    ]);
    expect(
      alignColumns([
        ['a', 'bb', 'c'],
        ['ccc', 'd', 'last column is not padded'],
      ]),
    ).toEqual(['a    bb  c', 'ccc  d   last column is not padded']);
  });
});
