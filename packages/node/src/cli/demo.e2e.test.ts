// `upsync demo`: the real CLI as a child process without a terminal, and the
// command in-process for its options, --keep and a stop.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '@upsync/core';
import { demo } from './demo.ts';
import { captureIo, tempDir } from './e2e-helpers.ts';

const BIN = fileURLToPath(new URL('../bin/upsync.ts', import.meta.url));
const DEMO = fileURLToPath(new URL('./demo.ts', import.meta.url));
/** The demo's tokens start with udt_ (see demo.ts); none may be printed or kept. */
const TOKEN_SHAPE = /udt_[A-Za-z0-9_-]{8,}/;
const cleanup: string[] = [];

afterAll(() => {
  for (const dir of cleanup) rmSync(dir, { recursive: true, force: true });
});

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name));
}

describe('upsync demo as a child process, no terminal', () => {
  it("runs to its end, exits 0 by itself, explains the numbers, removes what it wrote, prints no token, whatever the user's UPSYNC_* settings", async () => {
    const parent = tempDir('upsync-demo-e2e-');
    cleanup.push(parent);
    const dir = join(parent, 'demo');
    // demo.ts is loaded before the bin, so it registers itself whether commands.ts lists it or not.
    const child = spawn(
      process.execPath,
      ['--import', DEMO, BIN, 'demo', '--files', '40', '--seconds', '2', '--dir', dir],
      {
        // Settings that would change what the tour does, were they read.
        env: {
          ...process.env,
          NO_COLOR: '1',
          UPSYNC_CONFIG: join(parent, 'missing.config.json'),
          UPSYNC_JSON: 'true',
          UPSYNC_QUIET: 'true',
          UPSYNC_CONCURRENCY: '1',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, 45_000);
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (exitCode) => resolve(exitCode));
    });
    clearTimeout(timer);

    expect(killed, `the demo did not exit by itself:\n${stdout}\n${stderr}`).toBe(false);
    expect(code, `${stdout}\n${stderr}`).toBe(0);
    expect(stdout).toMatch(/faults .*rate limit of 40 requests\/s \(burst 10\).*503/);
    expect(stdout).toMatch(/→ 40 of 40 files stored/);
    expect(stdout).toMatch(/→ \d+ writes became \d+ PUTs/);
    expect(stdout).toContain("✔ the server has every file's latest content (40 files)");
    expect(stdout).toContain('What the numbers mean');
    expect(stdout).toMatch(/^ {2}coalesced +a change replaced/m);
    expect(stdout).toContain('upsync sync --help');
    expect(stdout).toContain(`Cleaned up: removed ${dir}`);
    expect(stderr).toMatch(/upsync sync: 40 items: 40 created/);
    expect(existsSync(dir)).toBe(false);
    expect(stdout + stderr).not.toMatch(TOKEN_SHAPE);
  }, 60_000);
});

describe('upsync demo in-process', () => {
  const never = new AbortController().signal;

  it('--help lists the options', async () => {
    const io = captureIo();
    expect(await demo(['--help'], io, { stopSignal: never })).toBe(0);
    for (const flag of ['--files N', '--seconds S', '--seed N', '--dir DIR', '--keep']) {
      expect(io.stdoutText).toContain(flag);
    }
  });

  it('refuses bad options with one clear line, before writing anything', async () => {
    const io = captureIo();
    await expect(demo(['--files', 'many'], io)).rejects.toThrow(
      new ConfigError('--files must be an integer from 1 to 20000, got "many"'),
    );
    await expect(demo(['--seconds', '0'], io)).rejects.toThrow(/--seconds must be an integer/);
    await expect(demo(['--nope'], io)).rejects.toThrow(/upsync demo --help/);
    const parent = tempDir('upsync-demo-busy-');
    cleanup.push(parent);
    writeFileSync(join(parent, 'mine.txt'), 'keep me');
    await expect(demo(['--dir', parent], io)).rejects.toThrow(
      /--dir .* is not an empty folder; give a new or empty one/,
    );
    expect(readFileSync(join(parent, 'mine.txt'), 'utf8')).toBe('keep me');
    expect(io.stdoutText).toBe('');
  });

  it('--keep keeps the folder, state and server data, and no kept file holds the token', async () => {
    const parent = tempDir('upsync-demo-keep-');
    cleanup.push(parent);
    const dir = join(parent, 'kept');
    mkdirSync(dir);
    const io = captureIo();
    const args = ['--files', '12', '--seconds', '1', '--dir', dir, '--keep'];
    const code = await demo(args, io, { stopSignal: never, color: false });
    expect(code, io.stdoutText + io.stderrText).toBe(0);
    expect(io.stdoutText).toContain(`Kept in ${dir}: sessions/`);
    expect(readdirSync(dir).sort()).toEqual(['server', 'sessions', 'state', 'upsync.config.json']);
    expect(readFileSync(join(dir, 'upsync.config.json'), 'utf8')).toBe('{}\n');
    const pinned = `--config ${join(dir, 'upsync.config.json')} --no-delete --no-json --no-quiet`;
    expect(io.stdoutText).toContain(`$ upsync sync ${join(dir, 'sessions')} `);
    expect(io.stdoutText.split('\n').filter((line) => line.includes(pinned))).toHaveLength(2);
    // The report's client side comes from the reports sync and run handed back.
    expect(io.stdoutText).toMatch(
      /^ {2}sync {2}12 created, 0 updated, 0 skipped, \d+ coalesced, \d+ retries; the server answered /m,
    );
    expect(io.stdoutText).toMatch(
      /^ {2}run {3}\d+ created, \d+ updated, .*; the server answered /m,
    );
    expect(filesUnder(join(dir, 'sessions'))).toHaveLength(12);
    for (const file of filesUnder(dir)) {
      expect(readFileSync(file, 'latin1'), file).not.toMatch(TOKEN_SHAPE);
    }
    expect(io.stdoutText + io.stderrText).not.toMatch(TOKEN_SHAPE);
  }, 30_000);

  async function stoppedWhen(
    seen: (stream: 'stdout' | 'stderr', text: string) => boolean,
    args: string[],
  ): Promise<{ code: number; dir: string; io: ReturnType<typeof captureIo> }> {
    const parent = tempDir('upsync-demo-stop-');
    cleanup.push(parent);
    const dir = join(parent, 'stopped');
    const stop = new AbortController();
    const io = captureIo();
    const { stdout, stderr } = io;
    io.stdout = (text) => {
      stdout(text);
      if (seen('stdout', text)) stop.abort();
    };
    io.stderr = (text) => {
      stderr(text);
      if (seen('stderr', text)) stop.abort();
    };
    const code = await demo([...args, '--dir', dir], io, { stopSignal: stop.signal });
    return { code, dir, io };
  }

  it('a stop during the full pass ends it at once with 130 and still removes what it wrote', async () => {
    const { code, dir, io } = await stoppedWhen(
      (stream, text) => stream === 'stderr' && text.includes('upsync sync: the remote lists'),
      ['--files', '200'],
    );
    expect(code).toBe(130);
    expect(io.stderrText).toContain('upsync demo: stopped');
    expect(io.stdoutText).not.toContain('Step 2/2');
    expect(io.stdoutText + io.stderrText).not.toMatch(/refused the token/);
    expect(existsSync(dir)).toBe(false);
  }, 30_000);

  it('a stop while the logs are rewritten stops run, then removes what it wrote', async () => {
    const { code, dir, io } = await stoppedWhen(
      (stream, text) => stream === 'stderr' && text.includes('upsync run: watching'),
      ['--files', '12', '--seconds', '60'],
    );
    expect(code).toBe(130);
    expect(io.stderrText).toContain('upsync run: stopping');
    expect(io.stderrText).toContain('upsync demo: stopped');
    expect(io.stdoutText).not.toContain('What the numbers mean');
    expect(existsSync(dir)).toBe(false);
  }, 30_000);
});
