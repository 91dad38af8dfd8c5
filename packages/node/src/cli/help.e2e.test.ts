// The CLI's front door as a user meets it: a child process, its exit code and
// what it prints for --help, --version and mistakes.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { VERSION } from './main.ts';

const BIN = fileURLToPath(new URL('../bin/upsync.ts', import.meta.url));

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(...args: string[]): Promise<Result> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
      if (code === null) reject(error ?? new Error('no exit code'));
      else resolve({ code, stdout, stderr });
    });
  });
}

describe('upsync --help and --version', () => {
  it('prints the commands, examples and exit codes, and exits 0', async () => {
    const { code, stdout, stderr } = await cli('--help');
    expect(code).toBe(0);
    expect(stderr).toBe('');
    for (const command of ['sync', 'run', 'serve']) expect(stdout).toMatch(`\n  ${command} `);
    expect(stdout).toContain('Examples:');
    expect(stdout).toContain('Exit codes: 0');
  });

  it('prints the version alone', async () => {
    const { code, stdout } = await cli('--version');
    expect(code).toBe(0);
    expect(stdout).toBe(`${VERSION}\n`);
  });

  it("gives every command's own help with a usage line and an example", async () => {
    const { stdout } = await cli('--help');
    const names = [...stdout.matchAll(/^ {2}([a-z]+) {2,}/gm)].map((m) => m[1] ?? '');
    expect(names.length).toBeGreaterThanOrEqual(3);
    for (const name of names) {
      const help = await cli(name, '--help');
      expect(help.code, name).toBe(0);
      expect(help.stdout, name).toContain(`Usage: upsync ${name}`);
      expect(help.stdout, name).toMatch(/Examples?:/);
    }
  });

  it('names an unknown command and exits 2 without a stack trace', async () => {
    const { code, stdout, stderr } = await cli('snyc');
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toBe('upsync: unknown command "snyc". Run "upsync --help" for the list.\n');
  });

  it('with no command prints the help on stdout and exits 2', async () => {
    const { code, stdout } = await cli();
    expect(code).toBe(2);
    expect(stdout).toContain('Usage: upsync <command>');
  });
});
