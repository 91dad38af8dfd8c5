// The live panel as a user at a terminal sees it: the real CLI on a
// pseudo-terminal (util-linux `script`) against the reference server, slowed
// down by its fault injection so that frames can be seen.
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteOutboxStore } from '../outbox/sqlite-store.ts';
import { principalOf } from './open-engine.ts';
import {
  manyFiles,
  startServer,
  tempDir,
  TOKEN,
  waitFor,
  writeFiles,
  type E2eServer,
} from './e2e-helpers.ts';
import {
  hasColor,
  hasScript,
  progressSeen,
  runCliOnPty,
  screenOf,
  stripEscapes,
} from './output-e2e-helpers.ts';

const required = process.env['UPSYNC_REQUIRE_SERVICES'] === '1';
const scriptHere = hasScript();
if (!scriptHere && !required) console.warn('skipped: no script (util-linux)');
// Where a real capture of the panel is kept for the README.

let server: E2eServer;
const cleanup: string[] = [];

beforeAll(async () => {
  server = await startServer();
});

afterAll(async () => {
  await server?.close();
  for (const dir of cleanup) rmSync(dir, { recursive: true, force: true });
});

async function pending(dir: string): Promise<{ pending: number; deadLetters: number }> {
  const store = new SqliteOutboxStore({ path: join(dir, '.upsync', 'outbox.db') });
  try {
    return await store.counts({ remote: server.url, project: 'p1', principal: principalOf() });
  } finally {
    await store.close();
  }
}

const env = { UPSYNC_TOKEN: TOKEN };
const common = (dir: string): string[] => [dir, '--remote', server.url, '--project', 'p1'];

describe.skipIf(!scriptHere && !required)('the live panel on a terminal', () => {
  it('needs util-linux script when UPSYNC_REQUIRE_SERVICES=1', () => {
    expect(scriptHere, 'skipped: no script (util-linux)').toBe(true);
  });

  it('updates while sync works; p pauses, q stops cleanly with the report and the rest pending', async () => {
    const dir = tempDir('upsync-pty-sync-');
    cleanup.push(dir);
    writeFiles(dir, manyFiles(200, 'pty/s-'));
    server.faults.configure({ latencyMs: 120 });
    try {
      const cli = runCliOnPty(['sync', ...common(dir), '--concurrency', '2'], env);
      const seen = (): string => stripEscapes(cli.output.text);
      await waitFor(
        () => (progressSeen(cli.output.text).at(-1)?.[0] ?? 0) >= 10,
        20_000,
        'progress',
      );
      expect(seen()).toContain('upsync sync · sending');
      expect(seen()).toMatch(/workers {3}[▮▯]+ \d+\/2 \(max 2\)/);
      expect(seen()).toContain('p pause · q stop');
      expect(hasColor(cli.output.text)).toBe(true);

      cli.type('p');
      await waitFor(() => seen().includes('upsync sync · PAUSED'), 5_000, 'PAUSED');
      await waitFor(() => seen().includes('p resume · q stop'), 5_000, 'the resume hint');
      cli.type('p');
      const resumedFrom = cli.output.text.length;
      await waitFor(
        () => stripEscapes(cli.output.text.slice(resumedFrom)).includes('p pause · q stop'),
        5_000,
        'resumed',
      );
      cli.type('q');
      const code = await cli.exited;

      // Several frames, the bar moving forward.
      const progress = progressSeen(cli.output.text).map(([done]) => done);
      expect(new Set(progress).size).toBeGreaterThanOrEqual(3);
      expect(progress).toEqual([...progress].sort((a, b) => a - b));
      // Stopped before the end: exit 1, what was not sent stays in the outbox.
      expect(code).toBe(1);
      const left = await pending(dir);
      expect(left.pending).toBeGreaterThan(0);
      const screen = screenOf(cli.output.text);
      const verdict = screen.find((line) => line.startsWith('✘'));
      expect(verdict).toMatch(/^✘ stopped: \d+ of 200 items arrived, \d+ did not/);
      expect(screen).toContain(
        `  ${left.pending} items pending in the outbox: run "upsync sync" again to send them`,
      );
      // The final frame stays on screen, above the report.
      expect(screen.some((line) => line.startsWith('upsync sync · done'))).toBe(true);
      // The terminal is given back: the cursor shown after it was last hidden.
      expect(cli.output.text.lastIndexOf('\u001B[?25h')).toBeGreaterThan(
        cli.output.text.lastIndexOf('\u001B[?25l'),
      );
      expect(cli.output.text).not.toContain(TOKEN);
    } finally {
      server.faults.reset();
    }
  }, 60_000);

  it('shows the watching state of run; q sends what is queued and exits 0; NO_COLOR has no colors', async () => {
    const dir = tempDir('upsync-pty-run-');
    cleanup.push(dir);
    writeFiles(dir, manyFiles(5, 'ptyrun/r-'));
    const cli = runCliOnPty(['run', ...common(dir), '--debounce', '1s'], { ...env, NO_COLOR: '1' });
    const seen = (): string => stripEscapes(cli.output.text);
    await waitFor(() => seen().includes('upsync run · watching'), 20_000, 'watching');
    writeFileSync(join(dir, 'ptyrun', 'new.txt'), 'new');
    await waitFor(() => /[1-9]\d* changes received/.test(seen()), 10_000, 'a change received');
    await waitFor(() => /[1-9]\d* sent/.test(seen()), 10_000, 'the change sent');
    cli.type('q');
    expect(await cli.exited).toBe(0);
    expect(hasColor(cli.output.text)).toBe(false);
    const screen = screenOf(cli.output.text);
    expect(screen.at(-1)).toBe('✔ everything arrived: 6 items (6 created)');
    expect(await pending(dir)).toMatchObject({ pending: 0, deadLetters: 0 });
  }, 60_000);

  it('leaves the final frame and the verdict on screen after a sync through 503s', async () => {
    const dir = tempDir('upsync-pty-capture-');
    cleanup.push(dir);
    writeFiles(dir, manyFiles(120, 'logs/session-'));
    writeFiles(dir, manyFiles(40, 'notes/n-'));
    server.faults.configure({ latencyMs: 25, share503: 0.03, retryAfterSeconds: 0 });
    try {
      const cli = runCliOnPty(['sync', ...common(dir), '--concurrency', '4'], env);
      expect(await cli.exited).toBe(0);
      const screen = screenOf(cli.output.text);
      const start = screen.findIndex((line) => line.startsWith('upsync sync · done'));
      expect(start).toBeGreaterThanOrEqual(0);
      const capture = screen.slice(start).join('\n');
      expect(capture).toMatch(/^progress {2}█+ 160\/160 {2}100%/m);
      expect(capture).toMatch(/✔ everything arrived: 160 items \(160 created\)/);
    } finally {
      server.faults.reset();
    }
  }, 60_000);
});
