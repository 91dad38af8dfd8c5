// `upsync sync` end to end, in-process through main(), against the reference server.
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { main } from './main.ts';
import './commands.ts';
import { SqliteOutboxStore } from '../outbox/sqlite-store.ts';
import { principalOf } from './open-engine.ts';
import {
  captureIo,
  closedPortUrl,
  getItem,
  manyFiles,
  startProxy,
  startServer,
  tempDir,
  TOKEN,
  writeFiles,
  type E2eServer,
} from './e2e-helpers.ts';
import type { CliReport } from './print-report.ts';

let server: E2eServer;
let tokenFile: string;
const cleanup: string[] = [];

beforeAll(async () => {
  server = await startServer();
  const dir = tempDir('upsync-e2e-token-');
  cleanup.push(dir);
  tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, `${TOKEN}\n`);
});

afterAll(async () => {
  await server.close();
  for (const dir of cleanup) rmSync(dir, { recursive: true, force: true });
});

afterEach(() => {
  server.faults.reset();
  server.log.length = 0;
});

/** A fresh folder under its own project prefix (the server is shared). */
function folder(files: Record<string, string>): string {
  const dir = tempDir('upsync-e2e-sync-');
  cleanup.push(dir);
  writeFiles(dir, files);
  return dir;
}

async function sync(
  dir: string,
  extra: string[] = [],
  url = server.url,
): Promise<{ code: number; report: CliReport; stderr: string; stdout: string }> {
  const io = captureIo();
  const code = await main(
    [
      'sync',
      dir,
      '--remote',
      url,
      '--project',
      'p1',
      '--token-file',
      tokenFile,
      '--json',
      ...extra,
    ],
    io,
  );
  const stdout = io.stdoutText;
  return {
    code,
    report: (stdout === '' ? null : JSON.parse(stdout)) as CliReport,
    stderr: io.stderrText,
    stdout,
  };
}

function expectInvariant(report: CliReport): void {
  expect(report.checked).toBe(true);
  expect(report.attempted).toBe(
    report.created +
      report.updated +
      report.deleted +
      report.skipped +
      report.errored +
      report.timedOut,
  );
}

/** Every file under `dir`, as text (state files included), to look for the token. */
function allText(dir: string): string {
  let text = '';
  for (const name of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    const path = join(dir, name);
    if (statSync(path).isFile()) text += readFileSync(path).toString('latin1');
  }
  return text;
}

describe('upsync sync', () => {
  it("never uploads upsync's own files: the config file and a token file inside the folder", async () => {
    const dir = folder({ 'own/notes.txt': 'data', 'own/secrets/token': `${TOKEN}\n` });
    writeFileSync(
      join(dir, 'upsync.config.json'),
      JSON.stringify({ remote: server.url, project: 'p1', tokenFile: 'own/secrets/token' }),
    );
    const io = captureIo();
    const code = await main(['sync', dir, '--json'], io);
    expect(code).toBe(0);
    expect(await getItem(server.url, 'own/notes.txt')).toBe('data');
    expect(await getItem(server.url, 'own/secrets/token')).toBeNull();
    expect(await getItem(server.url, 'upsync.config.json')).toBeNull();
    expect(server.puts()).toHaveLength(1);
  });

  it('syncs a few hundred files with one listing and no HEAD; a second pass sends and reads nothing', async () => {
    const files = manyFiles(300, 'full/session-');
    const dir = folder(files);
    const first = await sync(dir);
    expect(first.code).toBe(0);
    expect(first.stdout.trim().split('\n')).toHaveLength(1);
    expect(first.report).toMatchObject({ attempted: 300, created: 300, errored: 0, timedOut: 0 });
    expectInvariant(first.report);
    expect(server.count('GET')).toBe(1);
    expect(server.count('HEAD')).toBe(0);
    expect(server.puts()).toHaveLength(300);
    expect(await getItem(server.url, 'full/session-0123.jsonl')).toBe(
      files['full/session-0123.jsonl'],
    );

    server.log.length = 0;
    const second = await sync(dir);
    expect(second.code).toBe(0);
    expect(second.report).toMatchObject({ attempted: 300, skipped: 300 });
    expect(second.report.files.read).toBe(0);
    expect(server.count('PUT')).toBe(0);
    expect(server.count('HEAD')).toBe(0);
    expect(server.count('GET')).toBe(1);

    // The token is in no output, report or state file.
    for (const text of [first.stdout, first.stderr, second.stdout, second.stderr, allText(dir)]) {
      expect(text).not.toContain(TOKEN);
    }
  });

  it('falls back to HEAD when the listing fails 3 times, and completes', async () => {
    const dir = folder(manyFiles(10, 'fallback/f-'));
    server.faults.configure({ shareMalformedListing: 1 });
    const result = await sync(dir);
    expect(result.code).toBe(0);
    expect(result.report).toMatchObject({ attempted: 10, created: 10, listing: 'failed' });
    expect(server.count('GET')).toBe(3);
    expect(server.count('HEAD')).toBe(10);
    expect(server.count('PUT')).toBe(10);
    expect(result.stderr).toContain('checking each item with HEAD');
  });

  it('sends a revert (A, B, then A) as A, as a new version with a new Idempotency-Key', async () => {
    const dir = folder({ 'revert/doc.txt': 'A' });
    expect((await sync(dir)).code).toBe(0);
    writeFiles(dir, { 'revert/doc.txt': 'B is longer' });
    expect((await sync(dir)).code).toBe(0);
    writeFiles(dir, { 'revert/doc.txt': 'A' });
    const third = await sync(dir);
    expect(third.code).toBe(0);
    expect(third.report.updated).toBe(1);
    expect(await getItem(server.url, 'revert/doc.txt')).toBe('A');
    const keys = server.puts('revert/doc.txt').map((l) => l.idempotencyKey);
    expect(keys).toHaveLength(3);
    expect(new Set(keys).size).toBe(3);
  });

  it('delivers everything through 429s with Retry-After, 503s and resets; the accounting holds', async () => {
    const files = manyFiles(30, 'faults/f-');
    const dir = folder(files);
    // Mild enough that five 503s or resets in a row (which open the breaker for 5 s) are rare.
    server.faults.configure({
      share429: 0.1,
      share503: 0.04,
      shareReset: 0.04,
      retryAfterSeconds: 1,
    });
    const result = await sync(dir, ['--attempts', '12']);
    expect(result.code, JSON.stringify(result.report.errors)).toBe(0);
    expectInvariant(result.report);
    expect(result.report).toMatchObject({ attempted: 30, created: 30, errored: 0, timedOut: 0 });
    const statuses = new Set(server.log.map((l) => l.status));
    expect(statuses.has(429) || statuses.has(503)).toBe(true);
    server.faults.reset();
    for (const [key, content] of Object.entries(files).slice(0, 10)) {
      expect(await getItem(server.url, key)).toBe(content);
    }
  }, 30_000);

  it('dead-letters an item answered 400; the others complete', async () => {
    const proxy = await startProxy(server.url, (method, path) =>
      method === 'PUT' && path.endsWith('/bad/refused.txt') ? 400 : null,
    );
    try {
      const dir = folder({ 'bad/refused.txt': 'no', 'bad/ok-1.txt': '1', 'bad/ok-2.txt': '2' });
      const result = await sync(dir, [], proxy.url);
      expect(result.code).toBe(1);
      expectInvariant(result.report);
      expect(result.report).toMatchObject({ created: 2, errored: 1, deadLettered: 1 });
      expect(result.report.errors[0]).toMatchObject({ key: 'bad/refused.txt', status: 400 });
      const counts = await outboxCounts(dir, proxy.url);
      expect(counts).toMatchObject({ pending: 0, deadLetters: 1 });
      expect(await getItem(server.url, 'bad/ok-2.txt')).toBe('2');
    } finally {
      await proxy.close();
    }
  });

  it('ends on a 401 with one clear line and exit 1, dead-letters nothing and keeps the item pending', async () => {
    const dir = folder({ 'auth/one.txt': 'one' });
    const badTokenFile = join(dir, '..', `${dir.split('/').pop()}-bad-token`);
    cleanup.push(badTokenFile);
    writeFileSync(badTokenFile, 'not-the-right-token-1234');
    const io = captureIo();
    const args = ['sync', dir, '--remote', server.url, '--project', 'p1'];
    const code = await main([...args, '--token-file', badTokenFile, '--only', 'auth/one.txt'], io);
    expect(code).toBe(1);
    expect(io.stderrText.trim().split('\n')).toEqual([
      expect.stringMatching(/refused the token \(HTTP 401\)/),
    ]);
    expect(io.stderrText).not.toMatch(/\n\s+at /);
    expect(io.stderrText).not.toContain('not-the-right-token');
    const counts = await outboxCounts(dir, server.url);
    expect(counts).toMatchObject({ pending: 1, deadLetters: 0 });

    // The full pass: the listing's 401 ends the command before anything is sent.
    const full = captureIo();
    expect(await main([...args, '--token-file', badTokenFile], full)).toBe(1);
    expect(full.stderrText.trim().split('\n')).toHaveLength(1);
    expect(server.count('PUT')).toBe(0);

    // The scope names the user, not the token: with the token fixed, the change
    // left pending under the refused one goes.
    expect(await main([...args, '--token-file', tokenFile], captureIo())).toBe(0);
    expect(await getItem(server.url, 'auth/one.txt')).toBe('one');
    expect(await outboxCounts(dir, server.url)).toMatchObject({ pending: 0, deadLetters: 0 });
  });

  it('ends against an unreachable remote with one line and exit 1; every item stays pending', async () => {
    const dir = folder({ 'down/a.txt': 'a', 'down/b.txt': 'b', 'down/c.txt': 'c' });
    const { url } = await closedPortUrl();
    const io = captureIo();
    const args = ['sync', dir, '--remote', url, '--project', 'p1', '--token-file', tokenFile];
    const code = await main([...args, '--retry-time', '3s'], io);
    expect(code).toBe(1);
    const lines = io.stderrText.trim().split('\n');
    expect(lines).toEqual([expect.stringMatching(/could not be reached; 3 items stay pending/)]);
    expect(io.stderrText).not.toMatch(/\n\s+at /);
    expect(io.stderrText).not.toContain(TOKEN);
    expect(io.stdoutText).toBe('');
    expect(await outboxCounts(dir, url)).toMatchObject({ pending: 3, deadLetters: 0 });
  }, 40_000);

  it('sends a file that changed while it was sent with its newest content', async () => {
    // Big enough that the socket buffers cannot take it all before the proxy reads on.
    const big = 'a'.repeat(24 * 1024 * 1024);
    const dir = folder({ 'changing/big.bin': big, 'changing/small.txt': 'small' });
    const newest = `newest content ${'b'.repeat(1000)}`;
    let held = false;
    const proxy = await startProxy(server.url, () => null, {
      onPutBody: async (path) => {
        if (held || !path.endsWith('/changing/big.bin')) return;
        held = true;
        // The request body is not read until the file has changed under the sender.
        writeFileSync(join(dir, 'changing', 'big.bin'), newest);
        await new Promise((resolve) => setTimeout(resolve, 50));
      },
    });
    try {
      const result = await sync(dir, [], proxy.url);
      expect(result.code).toBe(0);
      expectInvariant(result.report);
      expect(held).toBe(true);
      expect(await getItem(server.url, 'changing/big.bin')).toBe(newest);
      expect(result.report.errored).toBe(0);
    } finally {
      await proxy.close();
    }
  }, 30_000);

  it('propagates a deletion only with --delete', async () => {
    const dir = folder({ 'del/keep.txt': 'keep', 'del/gone.txt': 'gone' });
    expect((await sync(dir)).code).toBe(0);
    rmSync(join(dir, 'del', 'gone.txt'));
    const without = await sync(dir);
    expect(without.code).toBe(0);
    expect(server.count('DELETE')).toBe(0);
    expect(await getItem(server.url, 'del/gone.txt')).toBe('gone');
    const withDelete = await sync(dir, ['--delete']);
    expect(withDelete.code).toBe(0);
    expect(withDelete.report.deleted).toBe(1);
    expect(server.count('DELETE')).toBe(1);
    expect(await getItem(server.url, 'del/gone.txt')).toBeNull();
    expect(await getItem(server.url, 'del/keep.txt')).toBe('keep');
  });

  it('refuses bad flags and a locked state folder with one line and exit 2', async () => {
    const dir = folder({ 'flags/a.txt': 'a' });
    const cases = [
      ['sync', dir, '--project', 'p1', '--token-file', tokenFile],
      ['sync', dir, '--remote', server.url, '--token-file', tokenFile],
      ['sync', dir, '--remote', server.url, '--project', 'p1', '--token', TOKEN],
      [
        'sync',
        dir,
        '--remote',
        server.url,
        '--project',
        'p1',
        '--token-file',
        tokenFile,
        '--retry-time',
        '5',
      ],
      [
        'sync',
        dir,
        '--remote',
        server.url,
        '--project',
        'p1',
        '--token-file',
        tokenFile,
        '--bogus',
      ],
    ];
    for (const args of cases) {
      const io = captureIo();
      expect(await main(args, io)).toBe(2);
      expect(io.stderrText.trim().split('\n')).toHaveLength(1);
      expect(io.stderrText).not.toContain(TOKEN);
    }
    const store = new SqliteOutboxStore({ path: join(dir, '.upsync', 'outbox.db') });
    const lock = await store.lock('someone-else');
    try {
      const io = captureIo();
      const code = await main(
        ['sync', dir, '--remote', server.url, '--project', 'p1', '--token-file', tokenFile],
        io,
      );
      expect(code).toBe(2);
      expect(io.stderrText).toMatch(/in use by/);
    } finally {
      await lock.release();
      await store.close();
    }
    const help = captureIo();
    expect(await main(['sync', '--help'], help)).toBe(0);
    expect(help.stdoutText).toContain('Examples:');
  });
});

async function outboxCounts(
  dir: string,
  url: string,
): Promise<{ pending: number; deadLetters: number }> {
  const store = new SqliteOutboxStore({ path: join(dir, '.upsync', 'outbox.db') });
  try {
    return await store.counts({ remote: url, project: 'p1', principal: principalOf() });
  } finally {
    await store.close();
  }
}
