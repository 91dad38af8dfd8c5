// `upsync run` in-process against the reference server, and a `sync` child
// process killed with SIGKILL mid-pass, then run again.
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from './run.ts';
import { SqliteOutboxStore } from '../outbox/sqlite-store.ts';
import { principalOf } from './open-engine.ts';
import {
  captureIo,
  closedPortUrl,
  getItem,
  manyFiles,
  sha256,
  startProxy,
  startServer,
  tempDir,
  TOKEN,
  waitFor,
  writeFiles,
  type E2eServer,
} from './e2e-helpers.ts';
import type { CliReport } from './print-report.ts';

const BIN = fileURLToPath(new URL('../bin/upsync.ts', import.meta.url));
let server: E2eServer;
let tokenFile: string;
const cleanup: string[] = [];

beforeAll(async () => {
  server = await startServer();
  const dir = tempDir('upsync-e2e-token-');
  cleanup.push(dir);
  tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, TOKEN);
});

afterAll(async () => {
  await server.close();
  for (const dir of cleanup) rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('upsync run', () => {
  it('sends the versions of the DESIGN example (scaled to a 2 s debounce) in order', async () => {
    const dir = tempDir('upsync-e2e-run-');
    cleanup.push(dir);
    const stop = new AbortController();
    let ready!: () => void;
    const isReady = new Promise<void>((resolve) => (ready = resolve));
    const io = captureIo();
    const args = [dir, '--remote', server.url, '--project', 'p1'];
    const running = run([...args, '--token-file', tokenFile, '--debounce', '2s', '--json'], io, {
      stopSignal: stop.signal,
      onReady: ready,
    });
    await Promise.race([isReady, sleep(10_000)]);
    // DESIGN.md: changes at t0, t1, t2, t21, t22, t23 and exit at t26 with I = 10 s send
    // changes 1, 3, 4 and 6. Here I = 2 s; the gaps are widened a little so the watcher's
    // latency cannot move a change across a window's edge. Change n is n bytes long, so
    // the request log's bytesIn names the version each PUT carried.
    const key = 'session.jsonl';
    const path = join(dir, key);
    const t0 = Date.now();
    const at = [0, 300, 600, 4600, 4900, 5200];
    for (const [index, offsetMs] of at.entries()) {
      await sleep(Math.max(0, t0 + offsetMs - Date.now()));
      writeFileSync(path, 'x'.repeat(index + 1));
    }
    await sleep(Math.max(0, t0 + 5900 - Date.now()));
    const stopAt = Date.now();
    stop.abort();
    const code = await Promise.race([running, sleep(15_000).then(() => 'hung')]);
    expect(code).toBe(0);

    const puts = server.puts(key);
    expect(puts.map((l) => l.bytesIn)).toEqual([1, 3, 4, 6]);
    const [first, second, third, fourth] = puts.map((l) => l.atMs - t0) as [
      number,
      number,
      number,
      number,
    ];
    // Generous windows: this checks the schedule, not the speed.
    expect(first).toBeLessThan(1500);
    expect(second).toBeGreaterThanOrEqual(1900);
    expect(second).toBeLessThan(4000);
    expect(third).toBeGreaterThanOrEqual(4500);
    expect(third).toBeLessThan(5800);
    expect(fourth + t0).toBeGreaterThanOrEqual(stopAt - 50);
    expect(await getItem(server.url, key)).toBe('xxxxxx');
    const report = JSON.parse(io.stdoutText) as CliReport;
    expect(report).toMatchObject({
      created: 1,
      updated: 3,
      errored: 0,
      timedOut: 0,
      checked: true,
    });
    expect(report.coalesced).toBe(2);
    expect(server.count('HEAD')).toBe(0);
  }, 30_000);
});

/** Spawns the real CLI; resolves with its exit code (null when killed) and output. */
function spawnCli(
  args: string[],
  onStart?: (kill: () => void) => void,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, UPSYNC_TOKEN: TOKEN },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  onStart?.(() => child.kill('SIGKILL'));
  const timer = setTimeout(() => child.kill('SIGKILL'), 25_000);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('upsync sync killed with SIGKILL', () => {
  it('leaves the newest content of every file after a restart, each version under one Idempotency-Key', async () => {
    const dir = tempDir('upsync-e2e-crash-');
    cleanup.push(dir);
    const files = manyFiles(400, 'crash/s-');
    writeFiles(dir, files);
    server.log.length = 0;
    // Slow answers keep the pass going long enough to be killed in the middle.
    server.faults.configure({ latencyMs: 40 });
    const args = ['sync', dir, '--remote', server.url, '--project', 'p1', '--json'];
    let killedAfter = 0;
    const killed = await spawnCli(args, (kill) => {
      void waitFor(() => server.puts().length >= 60, 20_000, '60 PUTs').then(() => {
        killedAfter = server.puts().length;
        kill();
      });
    });
    expect(killed.code).toBeNull();
    expect(killedAfter).toBeGreaterThanOrEqual(60);
    expect(server.puts().length).toBeLessThan(400);
    server.faults.reset();

    const again = await spawnCli(args);
    expect(again.stderr).not.toContain(TOKEN);
    expect(again.code).toBe(0);
    const report = JSON.parse(again.stdout) as CliReport;
    expect(report.checked).toBe(true);
    expect(report.errored + report.timedOut).toBe(0);

    // The server has the newest content of every file.
    const response = await fetch(`${server.url}/v1/projects/p1/items?prefix=crash/&limit=10000`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    const listing = (await response.json()) as { items: Array<{ key: string; sha256: string }> };
    const listed = new Map(listing.items.map((item) => [item.key, item.sha256]));
    expect(listed.size).toBe(400);
    for (const [key, content] of Object.entries(files))
      expect(listed.get(key)).toBe(sha256(content));

    // Every repeated PUT of a key (one version per file here) carried that version's key.
    const byKey = new Map<string, Set<string | undefined>>();
    for (const line of server.puts()) {
      const seen = byKey.get(line.path) ?? new Set();
      seen.add(line.idempotencyKey);
      byKey.set(line.path, seen);
    }
    for (const keys of byKey.values()) {
      expect(keys.size).toBe(1);
      expect([...keys][0]).toMatch(/^[0-9a-f]{32}$/);
    }
  }, 40_000);
});

/** The real CLI as a child process, its output collected as it comes. */
function startCli(args: string[]): {
  output: { stdout: string; stderr: string };
  signal: (name: NodeJS.Signals) => void;
  exited: Promise<number | null>;
} {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, UPSYNC_TOKEN: TOKEN },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = { stdout: '', stderr: '' };
  child.stdout.on('data', (chunk: Buffer) => (output.stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output.stderr += chunk.toString()));
  // A hung child must not outlive the test.
  const timer = setTimeout(() => child.kill('SIGKILL'), 80_000);
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
  return { output, signal: (name) => child.kill(name), exited };
}

async function pendingCount(dir: string, url: string): Promise<number> {
  const store = new SqliteOutboxStore({ path: join(dir, '.upsync', 'outbox.db') });
  try {
    const counts = await store.counts({
      remote: url,
      project: 'p1',
      principal: principalOf(),
    });
    return counts.pending;
  } finally {
    await store.close();
  }
}

describe('upsync run with the remote away', () => {
  it('keeps running while the remote is down, delivers once it listens, and exits 0 on SIGTERM', async () => {
    const dir = tempDir('upsync-e2e-down-');
    cleanup.push(dir);
    writeFiles(dir, { 'down/first.txt': 'first' });
    const { url, port } = await closedPortUrl();
    // A retry time shorter than the outage: both versions time out while the remote is
    // down, and only the resweep (every 30 s under `run`) sends them once it listens.
    const args = ['run', dir, '--remote', url, '--project', 'p1', '--debounce', '1s'];
    const cli = startCli([...args, '--retry-time', '2s']);
    let exited = false;
    void cli.exited.then(() => (exited = true));
    // The first progress line (2 s in): the engine is up, and the watcher, set up
    // before the first pass, has long been ready.
    await waitFor(() => / pending, /.test(cli.output.stderr) || exited, 20_000, 'a progress line');
    writeFileSync(join(dir, 'down', 'second.txt'), 'second');
    // Down for a while: requests are refused, the breaker opens, both versions time out
    // (their outcomes are in "done", their rows still pending), the command stays up.
    await waitFor(
      () => / 2 done, 2 pending, /.test(cli.output.stderr) || exited,
      20_000,
      'both versions timed out',
    );
    expect(exited).toBe(false);

    const late = await startServer({ port });
    try {
      await waitFor(
        async () =>
          (await getItem(late.url, 'down/first.txt')) === 'first' &&
          (await getItem(late.url, 'down/second.txt')) === 'second',
        45_000,
        'both files on the server',
      );
      expect(exited).toBe(false);
      cli.signal('SIGTERM');
      const code = await Promise.race([cli.exited, sleep(15_000).then(() => 'hung')]);
      expect(code).toBe(0);
      expect(cli.output.stderr).not.toMatch(/\n\s+at /);
      expect(await pendingCount(dir, url)).toBe(0);
    } finally {
      cli.signal('SIGKILL');
      await late.close();
    }
  }, 90_000);

  it('exits 1 after --shutdown-timeout when a send cannot finish; the item stays pending', async () => {
    const dir = tempDir('upsync-e2e-stuck-');
    cleanup.push(dir);
    writeFiles(dir, { 'stuck/one.txt': 'one' });
    let held = 0;
    const proxy = await startProxy(server.url, () => null, {
      hold: (method) => {
        if (method !== 'PUT') return false;
        held++;
        return true;
      },
    });
    try {
      const stop = new AbortController();
      const io = captureIo();
      const args = [dir, '--remote', proxy.url, '--project', 'p1', '--token-file', tokenFile];
      const running = run([...args, '--shutdown-timeout', '1s'], io, { stopSignal: stop.signal });
      await waitFor(() => held > 0, 20_000, 'a PUT held by the proxy');
      stop.abort();
      const code = await Promise.race([running, sleep(15_000).then(() => 'hung')]);
      expect(code).toBe(1);
      expect(io.stderrText).toMatch(/1 timed out/);
      expect(io.stderrText).not.toMatch(/\n\s+at /);
      expect(await pendingCount(dir, proxy.url)).toBe(1);
    } finally {
      await proxy.close();
    }
  }, 40_000);
});
