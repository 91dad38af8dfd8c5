import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { configCommand } from './config-command.ts';
import { captureIo } from './e2e-helpers.ts';
import { main } from './main.ts';

// Characters nothing else in the output uses: none of them may appear.
const TOKEN = '~^~^|^~|~^^~';
const made: string[] = [];
afterEach(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function workspace(file?: Record<string, unknown>): { cwd: string; dir: string } {
  const cwd = mkdtempSync(join(tmpdir(), 'upsync-config-cmd-'));
  made.push(cwd);
  const dir = join(cwd, 'data');
  mkdirSync(dir);
  if (file !== undefined) writeFileSync(join(dir, 'upsync.config.json'), JSON.stringify(file));
  return { cwd, dir };
}

/** The table's rows as [setting, value, from] (cells are separated by two or more spaces). */
function rowsOf(table: string): Map<string, [string, string]> {
  const rows = new Map<string, [string, string]>();
  for (const line of table.split('\n')) {
    const cells = line.trim().split(/ {2,}/);
    if (cells.length === 3) rows.set(cells[0]!, [cells[1]!, cells[2]!]);
  }
  return rows;
}

function expectNoTokenCharacters(text: string): void {
  for (const char of new Set(TOKEN)) expect(text).not.toContain(char);
}

describe('upsync config', () => {
  it('prints each setting, its value and its source as an aligned table', async () => {
    const { cwd, dir } = workspace({
      remote: 'https://sync.example.com',
      concurrency: 2,
      debounce: '2s',
    });
    const io = captureIo();
    const code = await configCommand(
      ['data', '--concurrency', '8'],
      io,
      { UPSYNC_TOKEN: TOKEN, UPSYNC_CONCURRENCY: '4', UPSYNC_LOG_LEVEL: 'debug' },
      cwd,
    );
    expect(code).toBe(0);
    expect(io.stderrText).toBe('');
    const out = io.stdoutText;
    expect(out).toContain(
      `upsync configuration for ${dir}\nconfig file: data/upsync.config.json\n`,
    );
    const rows = rowsOf(out);
    expect(rows.get('remote')).toEqual([
      'https://sync.example.com',
      'file data/upsync.config.json',
    ]);
    expect(rows.get('project')).toEqual([
      '(not set)',
      'required: --project, UPSYNC_PROJECT or "project" in the config file',
    ]);
    expect(rows.get('token')).toEqual(['********', 'env UPSYNC_TOKEN']);
    expect(rows.get('concurrency')).toEqual([
      '8',
      'flag --concurrency (beats env UPSYNC_CONCURRENCY, file data/upsync.config.json)',
    ]);
    expect(rows.get('logLevel')).toEqual(['debug', 'env UPSYNC_LOG_LEVEL']);
    expect(rows.get('debounce')).toEqual(['2s', 'file data/upsync.config.json']);
    expect(rows.get('retryTime')).toEqual(['2m', 'default']);
    expect(rows.get('rate')).toEqual(['(none)', 'default']);
    expect(out).toContain('Not set: project.');
    // Aligned: every row's value starts in the same column as the header's.
    const lines = out.split('\n').filter((line) => rowsOf(line).size === 1);
    const valueColumn = lines[0]!.indexOf('value');
    expect(valueColumn).toBeGreaterThan(0);
    for (const line of lines.slice(1)) expect(line[valueColumn - 1]).toBe(' ');
    expect(new Set(lines.map((line) => /^ {2}\S+ +/.exec(line)?.[0].length)).size).toBe(1);
    expectNoTokenCharacters(out);
  });

  it('shows a token from a file as masked, with the file it came from', async () => {
    const { cwd } = workspace({ tokenFile: '../token' });
    writeFileSync(join(cwd, 'token'), `${TOKEN}\n`);
    for (const json of [false, true]) {
      const io = captureIo();
      expect(await configCommand(['data', ...(json ? ['--json'] : [])], io, {}, cwd)).toBe(0);
      const from = `token file ${join(cwd, 'token')} (file data/upsync.config.json)`;
      if (json) {
        const parsed = JSON.parse(io.stdoutText) as {
          settings: Record<string, { value: unknown; source: string }>;
        };
        expect(parsed.settings['token']).toEqual({ value: '********', source: from });
      } else {
        expect(rowsOf(io.stdoutText).get('token')).toEqual(['********', from]);
      }
      expectNoTokenCharacters(io.stdoutText + io.stderrText);
    }
  });

  it('notes a tokenFile in the file that UPSYNC_TOKEN beats', async () => {
    const { cwd } = workspace({ tokenFile: 'nowhere' });
    const io = captureIo();
    expect(await configCommand(['data'], io, { UPSYNC_TOKEN: TOKEN }, cwd)).toBe(0);
    expect(rowsOf(io.stdoutText).get('tokenFile')?.[1]).toBe(
      'file data/upsync.config.json (not used: UPSYNC_TOKEN beats it)',
    );
    expectNoTokenCharacters(io.stdoutText);
  });

  it('--json prints every setting with its value and source', async () => {
    const { cwd, dir } = workspace({ delete: 'yes', retryTime: '90s' });
    const io = captureIo();
    expect(await configCommand(['data', '--json'], io, { UPSYNC_TOKEN: TOKEN }, cwd)).toBe(0);
    const parsed = JSON.parse(io.stdoutText) as Record<string, unknown>;
    expect(parsed).toMatchObject({
      dir,
      configFile: { path: join(dir, 'upsync.config.json'), found: true },
      missing: ['remote', 'project'],
      settings: {
        remote: {
          value: null,
          source: 'required: --remote, UPSYNC_REMOTE or "remote" in the config file',
        },
        token: { value: '********', source: 'env UPSYNC_TOKEN' },
        delete: { value: true, source: 'file data/upsync.config.json' },
        retryTime: { value: '1m30s', source: 'file data/upsync.config.json' },
        concurrency: { value: 16, source: 'default' },
        json: { value: true, source: 'flag --json' },
      },
    });
    expectNoTokenCharacters(io.stdoutText);
  });

  it('refuses a wrong value with the same one line as sync, through main (exit 2)', async () => {
    const { dir } = workspace({ concurrency: 'abc' });
    const io = captureIo();
    expect(await main(['config', dir], io)).toBe(2);
    // Outside the cwd, the file is named by its absolute path.
    expect(io.stderrText).toBe(
      `upsync config: concurrency = "abc" (from ${join(dir, 'upsync.config.json')}) is not allowed: an integer from 1 to 1024\n`,
    );
    expect(io.stdoutText).toBe('');
  });

  it('--help explains the layers with an example file', async () => {
    const io = captureIo();
    expect(await configCommand(['--help'], io, {})).toBe(0);
    expect(io.stdoutText).toMatch(
      /1\. a flag.*\n.*2\. an environment variable.*\n.*3\. the config file/,
    );
    expect(io.stdoutText).toContain('Example upsync.config.json:');
    const example = /Example upsync\.config\.json:\n([\s\S]*?\n {2}\})/.exec(io.stdoutText)?.[1];
    expect(JSON.parse(example ?? '')).toMatchObject({ remote: 'https://sync.example.com' });
  });
});

const BIN = fileURLToPath(new URL('../bin/upsync.ts', import.meta.url));
const COMMAND = pathToFileURL(fileURLToPath(new URL('./config-command.ts', import.meta.url))).href;

/** The real CLI as a user runs it (Node 24 from vitest), with only the given UPSYNC_* variables. */
function runCli(
  args: string[],
  cwd: string,
  upsyncEnv: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('UPSYNC_')),
  );
  // --import registers the command even before commands.ts lists it.
  const child = spawn(process.execPath, ['--import', COMMAND, BIN, ...args], {
    cwd,
    env: { ...env, ...upsyncEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('upsync config as a child process', () => {
  it('exits 2 with one stderr line for a bad value in the config file', async () => {
    const { cwd } = workspace({ remote: 'http://127.0.0.1:8787', retryTime: 'soon' });
    const result = await runCli(['config', 'data'], cwd, { UPSYNC_TOKEN: TOKEN });
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      'upsync config: retryTime = "soon" (from data/upsync.config.json) is not allowed: a duration like 500ms, 10s, 2m or 1h30m\n',
    );
  }, 30_000);

  it('prints the table with the token masked and exits 0', async () => {
    const { cwd } = workspace({ remote: 'http://127.0.0.1:8787', project: 'p1' });
    const result = await runCli(['config', 'data', '--rate', '3'], cwd, {
      UPSYNC_TOKEN: TOKEN,
      UPSYNC_BURST: '6',
    });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const rows = rowsOf(result.stdout);
    expect(rows.get('token')).toEqual(['********', 'env UPSYNC_TOKEN']);
    expect(rows.get('burst')).toEqual(['6', 'env UPSYNC_BURST']);
    expect(rows.get('rate')).toEqual(['3', 'flag --rate']);
    expectNoTokenCharacters(result.stdout);
  }, 30_000);
});
