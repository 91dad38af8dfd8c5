import type { KeyInput } from './keyboard.ts';

/** The part of a TTY write stream the panel needs. */
export interface PanelStream {
  readonly isTTY?: boolean;
  readonly columns?: number;
  readonly rows?: number;
  write(text: string): unknown;
}

/** Where the live panel goes: stderr when it is a terminal, and stdin for keys when that is one too. */
export interface Terminal {
  readonly stream: PanelStream;
  /** Null when stdin is not a terminal: no keys, Ctrl-C stays a signal. */
  readonly input: KeyInput | null;
  readonly color: boolean;
}

/**
 * Whether to color: NO_COLOR (any value but empty) turns it off, FORCE_COLOR
 * on (off for "0" or "false"); otherwise on for a terminal that is not dumb.
 */
export function colorWanted(env: NodeJS.ProcessEnv, isTTY: boolean): boolean {
  if (env['NO_COLOR'] !== undefined && env['NO_COLOR'] !== '') return false;
  const force = env['FORCE_COLOR'];
  if (force !== undefined) return force !== '0' && force !== 'false';
  return isTTY && env['TERM'] !== 'dumb';
}

/** The process's terminal, or null when stderr is not one (CI, a pipe, a file). */
export function processTerminal(env: NodeJS.ProcessEnv = process.env): Terminal | null {
  if (!process.stderr.isTTY || env['TERM'] === 'dumb') return null;
  return {
    stream: process.stderr,
    input: process.stdin.isTTY ? process.stdin : null,
    color: colorWanted(env, true),
  };
}
