// What `upsync sync` prints without a terminal (CI, pipes): the real CLI as a
// child process with piped stdio, against the reference server.
import { rmSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  manyFiles,
  startProxy,
  startServer,
  tempDir,
  TOKEN,
  writeFiles,
  type E2eServer,
} from './e2e-helpers.ts';
import { runCli } from './output-e2e-helpers.ts';
import type { CliReport } from './print-report.ts';

let server: E2eServer;
const cleanup: string[] = [];

beforeAll(async () => {
  server = await startServer();
});

afterAll(async () => {
  await server.close();
  for (const dir of cleanup) rmSync(dir, { recursive: true, force: true });
});

afterEach(() => server.faults.reset());

function folder(files: Record<string, string>): string {
  const dir = tempDir('upsync-output-');
  cleanup.push(dir);
  writeFiles(dir, files);
  return dir;
}

const env = { UPSYNC_TOKEN: TOKEN };
const sync = (dir: string, extra: string[] = [], url = server.url, more = {}) =>
  runCli(['sync', dir, '--remote', url, '--project', 'p1', ...extra], { ...env, ...more });

describe('upsync sync without a terminal', () => {
  it('prints plain progress lines every few seconds, then the report, with no escape code', async () => {
    const dir = folder(manyFiles(60, 'plain/p-'));
    server.faults.configure({ latencyMs: 120 });
    const result = await sync(dir, ['--concurrency', '2']);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('');
    const lines = result.stderr.trimEnd().split('\n');
    const progress = lines.filter((line) => / done, \d+ pending, \d+ in flight, /.test(line));
    expect(progress.length).toBeGreaterThanOrEqual(1);
    expect(progress[0]).toMatch(
      /^upsync sync: \d+ done, \d+ pending, \d+ in flight, \d+ retrying \(/,
    );
    expect(lines.at(-1)).toBe('✔ everything arrived: 60 items (60 created)');
    expect(result.stderr).not.toContain('\u001B');
    expect(result.stderr).not.toContain(TOKEN);
  }, 60_000);

  it('--json: the report alone on stdout, valid JSON, and no progress lines', async () => {
    const dir = folder(manyFiles(30, 'json/j-'));
    server.faults.configure({ latencyMs: 120 });
    const result = await sync(dir, ['--json', '--concurrency', '1']);
    expect(result.code).toBe(0);
    expect(result.stdout.endsWith('\n')).toBe(true);
    expect(result.stdout.trimEnd().split('\n')).toHaveLength(1);
    const report = JSON.parse(result.stdout) as CliReport;
    expect(report).toMatchObject({
      attempted: 30,
      created: 30,
      left: { pending: 0, deadLetters: 0 },
    });
    expect(result.stderr).not.toMatch(/ done, /);
  }, 60_000);

  it('--quiet: only the errors and the verdict, exit 1 when an item did not arrive', async () => {
    const proxy = await startProxy(server.url, (method, path) =>
      method === 'PUT' && path.endsWith('/quiet/refused.txt') ? 400 : null,
    );
    try {
      const dir = folder({
        'quiet/refused.txt': 'no',
        'quiet/ok-1.txt': '1',
        'quiet/ok-2.txt': '2',
      });
      const result = await sync(dir, ['--quiet'], proxy.url);
      expect(result.code).toBe(1);
      expect(result.stdout).toBe('');
      expect(result.stderr.trimEnd().split('\n')).toEqual([
        expect.stringMatching(/^upsync sync: dead-lettered: .*\(1 item\): quiet\/refused\.txt$/),
        '✘ 1 of 3 items did not arrive (1 dead-lettered)',
      ]);

      const fine = await sync(folder({ 'quiet/fine.txt': 'fine' }), ['--quiet']);
      expect(fine.code).toBe(0);
      expect(fine.stderr).toBe('✔ everything arrived: 1 item (1 created)\n');
    } finally {
      await proxy.close();
    }
  }, 60_000);

  it('--verbose: a line per outcome and per retry; the dead-letter queue and how to retry it', async () => {
    let refusedOnce = false;
    const proxy = await startProxy(server.url, (method, path) => {
      if (method !== 'PUT') return null;
      if (path.endsWith('/verbose/flaky.txt') && !refusedOnce) {
        refusedOnce = true;
        return 503;
      }
      return path.endsWith('/verbose/refused.txt') ? 422 : null;
    });
    try {
      const dir = folder({
        'verbose/a.txt': 'a',
        'verbose/flaky.txt': 'flaky',
        'verbose/refused.txt': 'no',
      });
      const result = await sync(dir, ['--verbose'], proxy.url);
      expect(result.code).toBe(1);
      const lines = result.stderr.trimEnd().split('\n');
      expect(lines).toContain('upsync sync: verbose/a.txt: created');
      expect(lines).toContain('upsync sync: verbose/flaky.txt: created');
      expect(lines.some((l) => /^upsync sync: verbose\/flaky\.txt: retry 1 in .*503/.test(l))).toBe(
        true,
      );
      expect(
        lines.some((l) => l.startsWith('upsync sync: dead-lettered: verbose/refused.txt')),
      ).toBe(true);
      expect(lines.slice(-2)).toEqual([
        '✘ 1 of 3 items did not arrive (1 dead-lettered)',
        '  1 item in the dead-letter queue: "upsync dlq retry" sends it again once fixed',
      ]);
    } finally {
      await proxy.close();
    }
  }, 60_000);

  it('colors the verdict with FORCE_COLOR, and never with NO_COLOR', async () => {
    const forced = await sync(folder({ 'color/a.txt': 'a' }), [], server.url, { FORCE_COLOR: '1' });
    expect(forced.code).toBe(0);
    expect(forced.stderr).toContain('\u001B[32m✔ everything arrived');
    const none = await sync(folder({ 'color/b.txt': 'b' }), [], server.url, {
      FORCE_COLOR: '1',
      NO_COLOR: '1',
    });
    expect(none.code).toBe(0);
    expect(none.stderr).not.toContain('\u001B');
  }, 60_000);
});
