// `upsync run` in-process against the reference server, and a `sync` child
// process killed with SIGKILL mid-pass, then run again.
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from './run.ts';
import {
  captureIo,
  getItem,
  manyFiles,
  sha256,
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
