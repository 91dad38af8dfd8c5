// Shared by the output tests: the real CLI as a child process, with pipes (no
// terminal) or under a pseudo-terminal from util-linux `script`, and a small
// screen model that replays what log-update wrote to a terminal.
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../bin/upsync.ts', import.meta.url));

export interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI with pipes for stdio (so no terminal anywhere); resolves at its exit. */
export function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<Finished> {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: cleanEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The parent's environment less what would change the output under test. */
function cleanEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const base = { ...process.env };
  delete base['NO_COLOR'];
  delete base['FORCE_COLOR'];
  delete base['CI'];
  return { ...base, TERM: 'xterm-256color', ...env };
}

/** Whether util-linux `script` is here to give a child a terminal. */
export function hasScript(): boolean {
  const probe = spawnSync('script', ['--version'], { encoding: 'utf8' });
  return probe.status === 0 && /util-linux/.test(probe.stdout + probe.stderr);
}

const quote = (arg: string): string => `'${arg.replace(/'/g, `'\\''`)}'`;

export interface PtyCli {
  /** Everything the terminal received (stdout and stderr share it), as it comes. */
  readonly output: { text: string };
  /** Types keys, as a user at the terminal would. */
  type(keys: string): void;
  readonly exited: Promise<number | null>;
  kill(): void;
}

/** Runs the CLI on a pseudo-terminal of 100x40 (`script -qfec`). */
export function runCliOnPty(args: string[], env: NodeJS.ProcessEnv): PtyCli {
  const command = [process.execPath, BIN, ...args].map(quote).join(' ');
  const child = spawn('script', ['-qfec', `stty cols 100 rows 40; exec ${command}`, '/dev/null'], {
    env: cleanEnv(env),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const output = { text: '' };
  child.stdout.on('data', (chunk: Buffer) => (output.text += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output.text += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
  return {
    output,
    type: (keys) => void child.stdin.write(keys),
    exited,
    kill: () => void child.kill('SIGKILL'),
  };
}

// eslint-disable-next-line no-control-regex
const SGR = /\u001B\[[0-9;]*m/g;
// eslint-disable-next-line no-control-regex
const ESCAPE = /\u001B\[[0-9;?]*[A-Za-z]/g;

/** Text without any escape sequence (colors, cursor moves). */
export const stripEscapes = (text: string): string => text.replace(ESCAPE, '');

/** Whether `text` holds a color (SGR) code. */
export const hasColor = (text: string): boolean => new RegExp(SGR.source).test(text);

/**
 * Replays terminal output on a screen of lines, for the escapes log-update
 * and a plain writer use (cursor up/down/left, erase line, erase to the line's
 * end, carriage return, new line): what a user sees at the end.
 */
export function screenOf(raw: string): string[] {
  const lines: string[] = [''];
  let row = 0;
  let col = 0;
  const put = (char: string): void => {
    const line = lines[row] ?? '';
    lines[row] = line.padEnd(col).slice(0, col) + char + line.slice(col + 1);
    col++;
  };
  // eslint-disable-next-line no-control-regex
  const tokens = raw.match(/\u001B\[[0-9;?]*[A-Za-z]|\r|\n|[^\u001B\r\n]/gu) ?? [];
  for (const token of tokens) {
    if (token === '\r') col = 0;
    else if (token === '\n') {
      row++;
      col = 0;
      if (lines[row] === undefined) lines[row] = '';
    } else if (token.startsWith('\u001B[')) {
      // eslint-disable-next-line no-control-regex
      const match = /^\u001B\[([0-9;?]*)([A-Za-z])$/u.exec(token);
      const n = Number(match?.[1] || '1');
      switch (match?.[2]) {
        case 'A':
          row = Math.max(0, row - n);
          break;
        case 'B':
          row += n;
          if (lines[row] === undefined) lines[row] = '';
          break;
        case 'G':
          col = 0;
          break;
        case 'K':
          // 2K erases the line, K (0K) from the cursor to its end.
          lines[row] = match[1] === '2' ? '' : (lines[row] ?? '').slice(0, col);
          break;
        default:
        // Colors, cursor visibility, synchronized output: nothing moves.
      }
    } else put(token);
  }
  while (lines.length > 0 && lines.at(-1)?.trim() === '') lines.pop();
  return lines.map((line) => line.trimEnd());
}

/** Every `done/total` the progress bar showed, in order. */
export function progressSeen(raw: string): Array<[number, number]> {
  const text = stripEscapes(raw);
  return [...text.matchAll(/ (\d+)\/(\d+)\+?\s+\d+%/g)].map((m) => [Number(m[1]), Number(m[2])]);
}
