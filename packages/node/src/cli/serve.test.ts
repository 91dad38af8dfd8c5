import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main, type CliIo } from './main.ts';
import { serve } from './serve.ts';
import './commands.ts';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'upsync-serve-test-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function captureIo(): CliIo & { out: string; err: string } {
  const io = {
    out: '',
    err: '',
    stdout: (text: string) => void (io.out += text),
    stderr: (text: string) => void (io.err += text),
  };
  return io;
}

describe('upsync serve', () => {
  it('prints its own help', async () => {
    const io = captureIo();
    expect(await main(['serve', '--help'], io)).toBe(0);
    expect(io.out).toContain('Usage: upsync serve');
    expect(io.out).toContain('--max-body');
  });

  it.each([
    [['--nope'], /Unknown option '--nope'/],
    [['--port', 'abc'], /--port must be an integer/],
    [['--max-body', 'lots'], /--max-body: not a size: "lots"/],
    [['--fault-429', '2'], /--fault-429 must be a number from 0 to 1/],
    [['--data', 'postgres://db/x'], /not supported yet/],
    [['--tokens', '/nonexistent/tokens.json'], /--tokens: cannot read/],
  ])('refuses %j with one line and exit 2', async (args, pattern) => {
    const io = captureIo();
    expect(await main(['serve', ...args], io)).toBe(2);
    expect(io.err).toMatch(pattern);
    expect(io.err.trim().split('\n')).toHaveLength(1);
  });

  it('refuses a malformed tokens file without echoing it', async () => {
    const dir = tempDir();
    const file = join(dir, 'tokens.json');
    writeFileSync(file, '{"super secret": "p1"}');
    const io = captureIo();
    expect(await main(['serve', '--tokens', file, '--data', join(dir, 'data')], io)).toBe(2);
    expect(io.err).not.toContain('super secret');
  });

  it('serves with tokens from the environment, logs requests without the token, stops on signal', async () => {
    const dir = tempDir();
    const io = captureIo();
    const stop = new AbortController();
    let url = '';
    const listening = new Promise<void>((resolve) => {
      void serve(['--port', '0', '--data', join(dir, 'data')], io, {
        env: { UPSYNC_SERVER_TOKENS: JSON.stringify({ 'env-token-1': ['p1'] }) },
        stopSignal: stop.signal,
        onListening: (u) => {
          url = u;
          resolve();
        },
      }).then((code) => expect(code).toBe(0));
    });
    await listening;
    const put = await fetch(`${url}/v1/projects/p1/items/a`, {
      method: 'PUT',
      headers: { authorization: 'Bearer env-token-1' },
      body: 'x',
    });
    expect(put.status).toBe(201);
    stop.abort();
    await new Promise((resolve) => setImmediate(resolve));
    expect(io.out).toContain('"status":201');
    expect(io.out + io.err).not.toContain('env-token-1');
  });

  it('prints a dev token once when given none, and stops gracefully on SIGTERM', async () => {
    const dir = tempDir();
    const bin = new URL('../bin/upsync.ts', import.meta.url).pathname;
    const child = spawn(
      process.execPath,
      [bin, 'serve', '--port', '0', '--data', join(dir, 'data'), '--log', 'off'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, UPSYNC_SERVER_TOKENS: '' },
      },
    );
    let err = '';
    child.stderr.setEncoding('utf8');
    const ready = new Promise<{ url: string; token: string }>((resolve) => {
      child.stderr.on('data', (part: string) => {
        err += part;
        const url = /listening on (\S+)/.exec(err)?.[1];
        const token = /dev token \(every project\): (\S+)/.exec(err)?.[1];
        if (url && token) resolve({ url, token });
      });
    });
    const { url, token } = await ready;
    const response = await fetch(`${url}/v1/projects/any-project/items`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(response.status).toBe(200);
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(err.split(token).length - 1).toBe(1);
    expect(err).toContain('stopped');
  });
});
