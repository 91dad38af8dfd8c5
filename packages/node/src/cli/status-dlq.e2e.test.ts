// `upsync status`, `upsync dlq`, last-run.json and upsync.log end to end: the
// real CLI as child processes, on state folders built with known contents.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EngineReport, EngineStatus, OutboxScope } from '@upsync/core';
import { ManualClock } from '@upsync/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteOutboxStore } from '../outbox/sqlite-store.ts';
import {
  captureIo,
  getItem,
  sha256,
  startProxy,
  startServer,
  tempDir,
  TOKEN,
  waitFor,
  writeFiles,
  type E2eServer,
} from './e2e-helpers.ts';
import { LAST_RUN_FILE, LastRunFile, type LastRunRecord } from './last-run.ts';
import { LOG_FILE } from './logger.ts';
import { main } from './main.ts';
import './dlq.ts';
import './status.ts';
import type { StatusJson } from './status.ts';

const BIN = fileURLToPath(new URL('../bin/upsync.ts', import.meta.url));
// The commands register on import; the bin's command list may not name them yet.
const COMMANDS = ['./status.ts', './dlq.ts'].map((path) =>
  fileURLToPath(new URL(path, import.meta.url)),
);
const PRINCIPAL = 'tester';
const WRONG_TOKEN = 'wrong-secret-token-0a1b2c';
const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

let server: E2eServer;
const cleanup: string[] = [];

beforeAll(async () => {
  server = await startServer();
});

afterAll(async () => {
  await server.close();
  for (const dir of cleanup) rmSync(dir, { recursive: true, force: true });
});

function folder(prefix = 'upsync-e2e-state-'): string {
  const dir = tempDir(prefix);
  cleanup.push(dir);
  return dir;
}

/** The environment of a user with no upsync settings but a fixed principal, in UTC. */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('UPSYNC_')) env[name] = value;
  }
  return { ...env, UPSYNC_PRINCIPAL: PRINCIPAL, TZ: 'UTC', ...extra };
}

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The CLI as a child process, the way a user runs it. */
function startCli(
  args: string[],
  env: Record<string, string> = {},
): { pid: number; done: Promise<Ran>; signal: (name: NodeJS.Signals) => void } {
  const child = spawn(
    process.execPath,
    [...COMMANDS.flatMap((c) => ['--import', c]), BIN, ...args],
    {
      env: userEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 40_000);
  const done = new Promise<Ran>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
  return { pid: child.pid!, done, signal: (name) => child.kill(name) };
}

const cli = (args: string[], env: Record<string, string> = {}): Promise<Ran> =>
  startCli(args, env).done;

/** Every file under `dir` as bytes (latin1 keeps every byte), to look for a token. */
function allBytes(dir: string): string {
  let text = '';
  for (const name of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    const path = join(dir, name);
    if (statSync(path).isFile()) text += readFileSync(path).toString('latin1');
  }
  return text;
}

/** What the child prints as local time: TZ=UTC, to the second. */
const utc = (ms: number): string => `${new Date(ms).toISOString().slice(0, 19)}+00:00`;

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

async function appendText(store: SqliteOutboxStore, scope: OutboxScope, key: string, text: string) {
  return store.append(scope, {
    key,
    digest: sha256(text),
    size: bytes(text).byteLength,
    body: { type: 'bytes', bytes: bytes(text) },
  });
}

/** Appends a version and moves it to the dead-letter queue at once. */
async function deadLetter(
  store: SqliteOutboxStore,
  scope: OutboxScope,
  key: string,
  text: string,
  refusal: { status: number; reason: string; attempts: number } = {
    status: 422,
    reason: 'HTTP 422: refused',
    attempts: 1,
  },
): Promise<number> {
  const row = await appendText(store, scope, key, text);
  await store.deadLetter(scope, key, row.seq, refusal);
  return row.seq;
}

const statusOf = (overrides: Partial<EngineStatus>): EngineStatus => ({
  enabled: false,
  paused: null,
  pending: 0,
  inFlight: 0,
  buffered: 0,
  deadLetters: 0,
  droppedDeadLetters: 0,
  lastSyncAtMs: null,
  consecutiveFailures: 0,
  breaker: 'closed',
  retrying: 0,
  ...overrides,
});

describe('upsync status', () => {
  const remote = 'http://127.0.0.1:9';
  const mine: OutboxScope = { remote, project: 'p1', principal: PRINCIPAL };
  const other: OutboxScope = { remote, project: 'p2', principal: PRINCIPAL };
  const theirs: OutboxScope = { remote, project: 'p1', principal: 'someone-else' };
  let dir: string;
  let stateDir: string;
  let t0: number;

  beforeAll(async () => {
    dir = folder();
    stateDir = join(dir, '.upsync');
    // Every time below is between 2 and 3 days ago.
    t0 = Date.now() - 3 * DAY + 10 * MINUTE;
    const clock = new ManualClock({ startMs: t0 });
    const store = new SqliteOutboxStore({
      path: join(stateDir, 'outbox.db'),
      clock,
      deadLetterCap: 2,
    });
    for (const key of ['a', 'b', 'c', 'd', 'e', 'f'])
      await appendText(store, mine, `k/${key}`, key);
    await store.claim(mine, { owner: 'someone', leaseMs: 5 * DAY, keys: ['k/a'] }); // live lease
    await store.claim(mine, { owner: 'someone', leaseMs: 1_000, keys: ['k/b'] }); // expired
    for (const [key, seq] of [
      ['k/c', 3],
      ['k/d', 4],
      ['k/f', 6],
    ] as const) {
      await store.deadLetter(mine, key, seq, { reason: 'HTTP 422: bad', status: 422, attempts: 1 });
    }
    await clock.advance(60 * MINUTE);
    await store.ack(mine, 'k/e', 5, { digest: sha256('e'), size: 1 });
    await appendText(store, other, 'z', 'z');
    await deadLetter(store, theirs, 'y', 'y');
    await store.close();
    const runClock = new ManualClock({ startMs: t0 + 60 * MINUTE });
    const run = new LastRunFile({
      stateDir,
      identity: { command: 'sync', ...mine },
      clock: runClock,
    });
    run.start();
    await runClock.advance(60 * MINUTE);
    // The outcome fields the record keeps; the rest of a report does not matter here.
    const report = {
      attempted: 5,
      created: 4,
      updated: 0,
      deleted: 0,
      skipped: 0,
      errored: 1,
      deadLettered: 1,
      timedOut: 0,
      inProgress: 0,
      coalesced: 0,
      paused: null,
    } as unknown as EngineReport;
    run.finish(report, statusOf({ pending: 2, inFlight: 1, breaker: 'open' }));
  });

  it('shows every scope with exact numbers, as text and as JSON, while another process holds the lock', async () => {
    const holder = new SqliteOutboxStore({ path: join(stateDir, 'outbox.db') });
    const lock = await holder.lock('upsync-cli');
    try {
      const record = JSON.parse(
        readFileSync(join(stateDir, LAST_RUN_FILE), 'utf8'),
      ) as LastRunRecord;
      const endMs = Date.parse(record.finishedAt!);
      const text = await cli(['status', dir]);
      expect(text.stderr).toBe('');
      expect(text.code).toBe(0);
      const [first, ...rest] = text.stdout.split('\n');
      expect(first).toMatch(
        new RegExp(
          `^upsync state in ${stateDir} \\(as of \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\+00:00\\)$`,
        ),
      );
      const ago = '(2 days ago)';
      expect(rest.join('\n')).toBe(
        [
          '',
          'last run:',
          `  finished ${utc(endMs)} ${ago}: upsync sync to ${remote} project p1`,
          `  started ${utc(t0 + 60 * MINUTE)} ${ago}`,
          '  5 items: 4 created, 0 updated, 0 deleted, 0 skipped, 1 errored (1 dead-lettered), 0 timed out; not everything arrived',
          '  left 2 pending, 1 in flight, 0 retrying; breaker open',
          '',
          `${remote} project p1, principal someone-else (another principal)`,
          '  pending       0',
          '  in flight     0',
          '  dead letters  1 (0 dropped by the cap)',
          '  synced keys   0',
          '  last synced   -',
          '  last run end  -',
          '  breaker       -',
          '',
          `${remote} project p1, principal tester`,
          '  pending       2',
          '  in flight     1',
          '  dead letters  2 (1 dropped by the cap)',
          '  synced keys   1',
          `  last synced   ${utc(t0 + 60 * MINUTE)} ${ago}`,
          `  last run end  ${utc(endMs)} ${ago}`,
          '  breaker       open',
          '',
          `${remote} project p2, principal tester`,
          '  pending       1',
          '  in flight     0',
          '  dead letters  0 (0 dropped by the cap)',
          '  synced keys   0',
          '  last synced   -',
          '  last run end  -',
          '  breaker       -',
          '',
        ].join('\n'),
      );

      const json = await cli(['status', '--state', stateDir, '--json']);
      expect(json.code).toBe(0);
      const parsed = JSON.parse(json.stdout) as StatusJson;
      const scopeJson = (scope: OutboxScope, values: Record<string, unknown>) => ({
        ...scope,
        pending: 0,
        inFlight: 0,
        deadLetters: 0,
        droppedDeadLetters: 0,
        syncedKeys: 0,
        lastSyncedAt: null,
        lastRunEndedAt: null,
        breaker: null,
        ...values,
      });
      expect({ ...parsed, now: 'now' }).toEqual({
        stateDir,
        exists: true,
        now: 'now',
        principal: PRINCIPAL,
        lastRun: { ...record, runState: 'finished' },
        lastRunProblem: null,
        scopes: [
          scopeJson(theirs, { deadLetters: 1 }),
          scopeJson(mine, {
            pending: 2,
            inFlight: 1,
            deadLetters: 2,
            droppedDeadLetters: 1,
            syncedKeys: 1,
            lastSyncedAt: new Date(t0 + 60 * MINUTE).toISOString(),
            lastRunEndedAt: record.finishedAt,
            breaker: 'open',
          }),
          scopeJson(other, { pending: 1 }),
        ],
      });
    } finally {
      await lock.release();
      await holder.close();
    }
  });

  it('says so when there is no state yet (exit 0), and refuses a folder that does not exist (exit 2)', async () => {
    const empty = folder();
    const none = await cli(['status', empty]);
    expect(none).toEqual({
      code: 0,
      stdout: `no upsync state in ${join(empty, '.upsync')} (nothing synced yet)\n`,
      stderr: '',
    });
    const json = await cli(['status', empty, '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ exists: false, scopes: [], lastRun: null });
    expect(readdirSync(empty)).toEqual([]);
    const missing = await cli(['status', join(empty, 'nope')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe(`upsync status: ${join(empty, 'nope')} is not a folder\n`);
    const badFlag = await cli(['status', '--bogus']);
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr.split('\n')).toHaveLength(2);
  });

  it('refuses a corrupt outbox.db with one line naming it, and leaves it as it was', async () => {
    const dir = folder();
    const stateDir = join(dir, '.upsync');
    const path = join(stateDir, 'outbox.db');
    writeFiles(stateDir, { 'outbox.db': 'this is not a database, just text. '.repeat(200) }, false);
    const before = readFileSync(path);
    for (const args of [
      ['status', dir],
      ['dlq', 'list', dir],
      ['dlq', 'purge', dir, '--all'],
    ]) {
      const result = await cli(args);
      expect(result.code).toBe(2);
      expect(result.stdout).toBe('');
      const lines = result.stderr.trimEnd().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(path);
      expect(lines[0]).toContain('corrupt');
    }
    expect(readFileSync(path).equals(before)).toBe(true);
    expect(readdirSync(stateDir)).toEqual(['outbox.db']);
  });

  it('shows "running (pid N)" while upsync run sends, then how the run ended', async () => {
    const dir = folder();
    writeFiles(dir, { 'watch/a.txt': 'alpha', 'watch/b.txt': 'beta' });
    const run = startCli(
      ['run', dir, '--remote', server.url, '--project', 'p1', '--debounce', '1s'],
      { UPSYNC_TOKEN: TOKEN },
    );
    const recordPath = join(dir, '.upsync', LAST_RUN_FILE);
    await waitFor(
      () => {
        try {
          return (
            (JSON.parse(readFileSync(recordPath, 'utf8')) as LastRunRecord).state === 'running'
          );
        } catch {
          return false;
        }
      },
      20_000,
      'the running record',
    );
    const running = await cli(['status', dir]);
    expect(running.code).toBe(0);
    expect(running.stdout).toContain(
      `running (pid ${run.pid}): upsync run to ${server.url} project p1`,
    );
    const runningJson = JSON.parse((await cli(['status', dir, '--json'])).stdout) as StatusJson;
    expect(runningJson.lastRun).toMatchObject({
      runState: 'running',
      pid: run.pid,
      command: 'run',
    });

    await waitFor(
      async () => (await getItem(server.url, 'watch/b.txt')) === 'beta',
      20_000,
      'b.txt',
    );
    run.signal('SIGTERM');
    expect((await run.done).code).toBe(0);
    const after = JSON.parse((await cli(['status', dir, '--json'])).stdout) as StatusJson;
    expect(after.lastRun).toMatchObject({
      runState: 'finished',
      state: 'finished',
      pid: run.pid,
      allArrived: true,
      outcome: { attempted: 2, created: 2, errored: 0, timedOut: 0 },
      pending: 0,
      breaker: 'closed',
    });
    const scope = after.scopes.find((s) => s.remote === server.url && s.principal === PRINCIPAL);
    expect(scope).toMatchObject({ pending: 0, syncedKeys: 2, breaker: 'closed' });
    expect(scope?.lastRunEndedAt).toBe(after.lastRun?.finishedAt);
    const log = readFileSync(join(dir, '.upsync', LOG_FILE), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { event?: string; command?: string });
    expect(log.map((line) => line.event)).toEqual(
      expect.arrayContaining(['started', 'listing', 'stopped', 'finished']),
    );
    expect(log.every((line) => line.command === 'run')).toBe(true);
  }, 60_000);
});

/** A folder whose outbox holds dead letters of `scope` (and one of another principal, never touched). */
async function dlqFolder(
  scope: OutboxScope,
  letters: Array<
    [key: string, text: string, refusal?: { status: number; reason: string; attempts: number }]
  >,
  startMs = Date.now(),
): Promise<{ dir: string; stateDir: string }> {
  const dir = folder('upsync-e2e-dlq-');
  const stateDir = join(dir, '.upsync');
  const store = new SqliteOutboxStore({
    path: join(stateDir, 'outbox.db'),
    clock: new ManualClock({ startMs }),
  });
  for (const [key, text, refusal] of letters) await deadLetter(store, scope, key, text, refusal);
  await deadLetter(store, { ...scope, principal: 'someone-else' }, 'theirs.txt', 'theirs');
  await store.close();
  return { dir, stateDir };
}

interface ListJson {
  scope: OutboxScope | null;
  count: number;
  dropped: number;
  deadLetters: Array<{ key: string; seq: number; status: number | null; reason: string }>;
}

async function listJson(args: string[]): Promise<ListJson> {
  const result = await cli(['dlq', 'list', ...args, '--json']);
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout) as ListJson;
}

describe('upsync dlq', () => {
  it('lists the dead letters of the one scope of this principal, oldest first', async () => {
    const scope = { remote: 'http://127.0.0.1:9', project: 'p1', principal: PRINCIPAL };
    const at = Date.now() - 5 * MINUTE - 30_000;
    const { dir } = await dlqFolder(
      scope,
      [
        [
          'logs/one.jsonl',
          'x'.repeat(2048),
          { status: 413, reason: 'HTTP 413: too large', attempts: 1 },
        ],
        ['logs/two.jsonl', 'yy', { status: 422, reason: 'HTTP 422: bad name', attempts: 3 }],
      ],
      at,
    );
    const text = await cli(['dlq', 'list', dir]);
    const when = `${utc(at)} (5 minutes ago)`;
    expect(text).toEqual({
      code: 0,
      stderr: '',
      stdout: [
        `2 dead letters for ${scope.remote} project p1 (0 dropped by the cap), oldest first:`,
        `KEY             STATUS  ATTEMPTS  SIZE     ${'DEAD-LETTERED'.padEnd(when.length)}  REASON`,
        `logs/one.jsonl  413     1         2.0 KiB  ${when}  HTTP 413: too large`,
        `logs/two.jsonl  422     3         2 B      ${when}  HTTP 422: bad name`,
        '',
      ].join('\n'),
    });
    expect(await listJson([dir])).toEqual({
      stateDir: join(dir, '.upsync'),
      scope,
      count: 2,
      dropped: 0,
      deadLetters: [
        {
          key: 'logs/one.jsonl',
          seq: 1,
          kind: 'put',
          status: 413,
          reason: 'HTTP 413: too large',
          attempts: 1,
          size: 2048,
          deadLetteredAt: new Date(at).toISOString(),
        },
        {
          key: 'logs/two.jsonl',
          seq: 2,
          kind: 'put',
          status: 422,
          reason: 'HTTP 422: bad name',
          attempts: 3,
          size: 2,
          deadLetteredAt: new Date(at).toISOString(),
        },
      ],
    });
  }, 60_000);

  it('asks for --remote and --project when the folder holds several scopes of this principal (exit 2)', async () => {
    const remote = 'http://127.0.0.1:9';
    const { dir, stateDir } = await dlqFolder({ remote, project: 'p1', principal: PRINCIPAL }, [
      ['a.txt', 'a'],
    ]);
    const store = new SqliteOutboxStore({ path: join(stateDir, 'outbox.db') });
    await deadLetter(store, { remote, project: 'p2', principal: PRINCIPAL }, 'b.txt', 'b');
    await store.close();
    const ambiguous = await cli(['dlq', 'list', dir]);
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.stdout).toBe('');
    expect(ambiguous.stderr).toBe(
      `upsync dlq list: the state folder ${stateDir} holds 2 scopes for ${PRINCIPAL}; name one with --remote URL --project ID:\n` +
        `  --remote ${remote} --project p1\n` +
        `  --remote ${remote} --project p2\n`,
    );
    const p2 = await listJson([dir, '--remote', remote, '--project', 'p2']);
    expect(p2.deadLetters.map((row) => row.key)).toEqual(['b.txt']);
    // One of the two is enough to tell them apart.
    const p1 = await listJson([dir, '--project', 'p1']);
    expect(p1.deadLetters.map((row) => row.key)).toEqual(['a.txt']);
  }, 60_000);

  it('purges named keys or --all; no keys and no --all is exit 2, an unknown key exit 1 with nothing purged', async () => {
    const scope = { remote: 'http://127.0.0.1:9', project: 'p1', principal: PRINCIPAL };
    const { dir } = await dlqFolder(scope, [
      ['k1.txt', '1'],
      ['k2.txt', '2'],
      ['k3.txt', '3'],
    ]);
    const bare = await cli(['dlq', 'purge', dir]);
    expect(bare).toEqual({
      code: 2,
      stdout: '',
      stderr: 'upsync dlq: name the keys to purge, or pass --all to purge every dead letter\n',
    });
    const unknown = await cli(['dlq', 'purge', dir, 'k2.txt', 'nope.txt']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe(
      'upsync dlq purge: no dead letter for "nope.txt"; nothing was purged (see "upsync dlq list")\n',
    );
    expect((await listJson([dir])).count).toBe(3);

    const one = await cli(['dlq', 'purge', dir, 'k2.txt']);
    expect(one).toEqual({
      code: 0,
      stdout: `purged 1 dead letters of ${scope.remote} project p1\n`,
      stderr: '',
    });
    expect((await listJson([dir])).deadLetters.map((row) => row.key)).toEqual(['k1.txt', 'k3.txt']);

    const all = await cli(['dlq', 'purge', dir, '--all']);
    expect(all.code).toBe(0);
    expect(all.stdout).toBe(`purged 2 dead letters of ${scope.remote} project p1\n`);
    expect((await listJson([dir])).count).toBe(0);
    // The other principal's dead letter is still there.
    const store = new SqliteOutboxStore({ path: join(dir, '.upsync', 'outbox.db') });
    expect((await store.counts({ ...scope, principal: 'someone-else' })).deadLetters).toBe(1);
    await store.close();
  }, 60_000);

  it('retries against the server: exit 0 when everything arrived, and the server holds the content', async () => {
    const scope = { remote: server.url, project: 'p1', principal: PRINCIPAL };
    const { dir } = await dlqFolder(scope, [
      ['retry/one.txt', 'first content'],
      ['retry/two.txt', 'second content'],
    ]);
    const result = await cli(['dlq', 'retry', dir, '--remote', server.url, '--project', 'p1'], {
      UPSYNC_TOKEN: TOKEN,
    });
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(
      `upsync dlq retry: 2 dead letters of ${server.url} project p1 sent again: 2 arrived, 0 back in the dead-letter queue, 0 not arrived (pending)\n`,
    );
    expect(result.code).toBe(0);
    expect(await getItem(server.url, 'retry/one.txt')).toBe('first content');
    expect(await getItem(server.url, 'retry/two.txt')).toBe('second content');
    expect((await listJson([dir])).count).toBe(0);
    const status = JSON.parse((await cli(['status', dir, '--json'])).stdout) as StatusJson;
    expect(status.lastRun).toMatchObject({ command: 'dlq retry', allArrived: true });
    expect(status.scopes.find((s) => s.principal === PRINCIPAL)).toMatchObject({
      pending: 0,
      deadLetters: 0,
      syncedKeys: 2,
    });
  }, 60_000);

  it('retries what the server refuses again back into the queue (exit 1), and an unknown key changes nothing (exit 1)', async () => {
    const proxy = await startProxy(server.url, (method, path) =>
      method === 'PUT' && path.includes('again/bad.txt') ? 422 : null,
    );
    try {
      const scope = { remote: proxy.url, project: 'p1', principal: PRINCIPAL };
      const { dir } = await dlqFolder(scope, [
        ['again/good.txt', 'good'],
        ['again/bad.txt', 'bad'],
      ]);
      const env = { UPSYNC_TOKEN: TOKEN };
      const unknown = await cli(['dlq', 'retry', dir, 'again/good.txt', 'nope.txt'], env);
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toBe(
        'upsync dlq retry: no dead letter for "nope.txt"; nothing was retried (see "upsync dlq list")\n',
      );
      expect((await listJson([dir])).count).toBe(2);

      const result = await cli(
        ['dlq', 'retry', dir, '--remote', proxy.url, '--project', 'p1'],
        env,
      );
      expect(result.code).toBe(1);
      expect(result.stdout).toBe(
        `upsync dlq retry: 2 dead letters of ${proxy.url} project p1 sent again: 1 arrived, 1 back in the dead-letter queue, 0 not arrived (pending)\n`,
      );
      expect(result.stderr).toContain(
        'upsync dlq retry: back in the dead-letter queue: again/bad.txt: ',
      );
      expect(await getItem(server.url, 'again/good.txt')).toBe('good');
      expect(await getItem(server.url, 'again/bad.txt')).toBeNull();
      const back = await listJson([dir]);
      expect(back.deadLetters.map((row) => [row.key, row.status])).toEqual([
        ['again/bad.txt', 422],
      ]);
      // A new version: the seq moved on from the two the folder started with.
      expect(back.deadLetters[0]!.seq).toBeGreaterThan(2);
    } finally {
      await proxy.close();
    }
  }, 60_000);

  it('puts the dead letters back without sending when no remote or token is set (exit 0)', async () => {
    const scope = { remote: server.url, project: 'p1', principal: PRINCIPAL };
    const { dir } = await dlqFolder(scope, [
      ['later/a.txt', 'a'],
      ['later/b.txt', 'b'],
    ]);
    const before = server.log.length;
    const result = await cli(['dlq', 'retry', dir]);
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
    // The reason is sync's own message for a missing remote.
    expect(result.stdout).toMatch(
      new RegExp(
        `^upsync dlq retry: put 2 dead letters of ${server.url} project p1 back in the outbox; ` +
          'not sent now \\([^\\n]*remote[^\\n]*\\): the next "upsync sync" or "upsync run" sends them\\n$',
      ),
    );
    expect(server.log.length).toBe(before);
    const status = JSON.parse((await cli(['status', dir, '--json'])).stdout) as StatusJson;
    expect(status.scopes.find((s) => s.principal === PRINCIPAL)).toMatchObject({
      pending: 2,
      deadLetters: 0,
    });
    // With a remote but no token: the same, naming what is missing.
    const { dir: second } = await dlqFolder(scope, [['later/c.txt', 'c']]);
    const noToken = await cli(['dlq', 'retry', second, '--remote', server.url, '--project', 'p1']);
    expect(noToken.code).toBe(0);
    expect(noToken.stdout).toMatch(/not sent now \(no token[^\n]*\): the next/);
  }, 60_000);

  it('refuses to retry while another process sends from the folder (exit 2), changing nothing', async () => {
    const scope = { remote: server.url, project: 'p1', principal: PRINCIPAL };
    const { dir, stateDir } = await dlqFolder(scope, [['locked/a.txt', 'a']]);
    const holder = new SqliteOutboxStore({ path: join(stateDir, 'outbox.db') });
    const lock = await holder.lock('upsync-cli');
    try {
      const result = await cli(['dlq', 'retry', dir, '--remote', server.url, '--project', 'p1'], {
        UPSYNC_TOKEN: TOKEN,
      });
      expect(result.code).toBe(2);
      expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(result.stderr).toContain(`is in use by pid ${process.pid}`);
      expect((await listJson([dir])).count).toBe(1);
    } finally {
      await lock.release();
      await holder.close();
    }
  }, 60_000);
});

describe('the token', () => {
  it('appears nowhere (output, upsync.log, last-run.json, any state file) after a sync with a wrong and a right token', async () => {
    const dir = folder('upsync-e2e-secret-');
    writeFiles(dir, { 'secret/a.txt': 'alpha', 'secret/b.txt': 'beta' });
    const stateDir = join(dir, '.upsync');
    const args = ['sync', dir, '--remote', server.url, '--project', 'p1', '--log-level', 'trace'];
    const leaks = (text: string): string[] =>
      [TOKEN, WRONG_TOKEN].filter((token) => text.includes(token));

    const wrong = await cli(args, { UPSYNC_TOKEN: WRONG_TOKEN });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('refused the token');
    expect(leaks(wrong.stdout + wrong.stderr)).toEqual([]);
    expect(leaks(allBytes(stateDir))).toEqual([]);
    const refused = JSON.parse(
      readFileSync(join(stateDir, LAST_RUN_FILE), 'utf8'),
    ) as LastRunRecord;
    expect(refused).toMatchObject({ state: 'finished', allArrived: false });
    expect(refused.paused).toContain('refused the token');

    const right = await cli(args, { UPSYNC_TOKEN: TOKEN });
    expect(right.code).toBe(0);
    expect(leaks(right.stdout + right.stderr)).toEqual([]);
    expect(leaks(allBytes(stateDir))).toEqual([]);
    expect(JSON.parse(readFileSync(join(stateDir, LAST_RUN_FILE), 'utf8'))).toMatchObject({
      state: 'finished',
      allArrived: true,
      outcome: { created: 2 },
    });
    // The log is there and detailed (trace), so its lack of the token means something.
    const log = readFileSync(join(stateDir, LOG_FILE), 'utf8');
    const events = log
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { event?: string }).event);
    expect(events).toEqual(
      expect.arrayContaining(['started', 'paused', 'accepted', 'sending', 'outcome', 'finished']),
    );
    expect(await getItem(server.url, 'secret/a.txt')).toBe('alpha');
  }, 60_000);
});

describe('help', () => {
  it('explains each command with examples; a missing or unknown dlq action is exit 2', async () => {
    for (const [args, code] of [
      [['status', '--help'], 0],
      [['dlq', '--help'], 0],
      [['dlq', 'retry', '--help'], 0],
      [['dlq'], 2],
    ] as const) {
      const io = captureIo();
      expect(await main([...args], io)).toBe(code);
      expect(io.stdoutText).toMatch(/^Usage: upsync (status|dlq)/);
      expect(io.stdoutText).toContain('Examples:');
    }
    const io = captureIo();
    expect(await main(['dlq', 'requeue'], io)).toBe(2);
    expect(io.stderrText).toBe(
      'upsync dlq: unknown action "requeue": use list, retry or purge. Run "upsync dlq --help".\n',
    );
  });
});
