import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, keyProblem, parseDuration } from '@upsync/core';

/** Everything `sync` and `run` need, checked: a bad value is a ConfigError (exit 2). */
export interface SyncOptions {
  readonly command: 'sync' | 'run';
  /** The folder to mirror, absolute. */
  readonly dir: string;
  readonly remote: string;
  readonly project: string;
  /** Never printed, logged or stored. */
  readonly token: string;
  readonly stateDir: string;
  readonly concurrency: number;
  readonly ratePerSec: number | undefined;
  readonly burst: number | undefined;
  readonly attempts: number;
  readonly retryTimeMs: number;
  readonly json: boolean;
  readonly delete: boolean;
  /** `sync --only KEY`. */
  readonly only: string | undefined;
  /** `run --debounce`. */
  readonly debounceMs: number;
  /** `run --shutdown-timeout`; also how long `sync` waits for sends at the end. */
  readonly shutdownTimeoutMs: number;
  /** `--quiet`: only errors and the final one-line verdict. */
  readonly quiet: boolean;
  /** `--verbose`: every outcome and retry as a plain line. */
  readonly verbose: boolean;
  /** `--log-level`: the state folder's log file. */
  readonly logLevel: LogLevel;
}

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const common = {
  remote: { type: 'string' },
  project: { type: 'string' },
  'token-file': { type: 'string' },
  token: { type: 'string' },
  state: { type: 'string' },
  concurrency: { type: 'string' },
  rate: { type: 'string' },
  burst: { type: 'string' },
  attempts: { type: 'string' },
  'retry-time': { type: 'string' },
  json: { type: 'boolean' },
  delete: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  verbose: { type: 'boolean' },
  'log-level': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const syncOnly = { only: { type: 'string' } } as const;
const runOnly = {
  debounce: { type: 'string' },
  'shutdown-timeout': { type: 'string' },
} as const;

const COMMON_HELP = `Common options:
  --remote URL             the server's base URL (required), e.g. https://sync.example.com
  --project ID             the project on the server (required; never taken from the folder name)
  --token-file FILE        a file holding the token; else the UPSYNC_TOKEN environment variable
  --state DIR              the state folder: outbox and digest cache (default DIR/.upsync)
  --concurrency N          ceiling of requests in flight, adaptive below it (default 16)
  --rate R                 requests per second ceiling (default none)
  --burst N                requests let through at once under --rate (default R rounded up)
  --attempts N             attempts per change, the first included (default 5)
  --retry-time DURATION    retry time per change, like 30s or 2m (default 2m)
  --delete                 propagate deletions: a file gone from DIR is deleted on the remote
  --json                   print only the final report, as one JSON object, on stdout
  --help                   show this help

Exit codes: 0 everything arrived (or was already there), 1 something did not
arrive (it stays in the outbox or the dead-letter queue), 2 a usage,
configuration or local state error.
`;

export const SYNC_HELP = `Usage: upsync sync [DIR] [options]

Mirrors DIR (default .) to the remote once: one listing of the remote, then
every file whose content the remote does not have is sent. Unchanged files are
not read again (their digests are cached in the state folder).

Options:
  --only KEY               send one item (its relative path): checked with a HEAD, no listing
${COMMON_HELP}
Examples:
  UPSYNC_TOKEN=... upsync sync ./logs --remote https://sync.example.com --project team-logs
  upsync sync ./logs --remote http://127.0.0.1:8787 --project p1 --token-file ~/.upsync-token --delete
  upsync sync ./logs --remote http://127.0.0.1:8787 --project p1 --only 2024/session-7.jsonl
  upsync sync . --remote http://127.0.0.1:8787 --project p1 --rate 5 --json > report.json
`;

export const RUN_HELP = `Usage: upsync run [DIR] [options]

Mirrors DIR (default .) once like "upsync sync", then watches it and sends each
change: the first change of a file at once, later ones at most once per
--debounce window (the newest content wins). Runs until SIGINT or SIGTERM, then
sends everything queued and waits up to --shutdown-timeout. A remote that is
unreachable does not end it: changes wait in the outbox.

Options:
  --debounce DURATION          per-file window between sends (default 10s)
  --shutdown-timeout DURATION  how long to wait for sends when stopped (default 30s)
${COMMON_HELP}
Examples:
  UPSYNC_TOKEN=... upsync run ~/.ai-tool/sessions --remote https://sync.example.com --project me
  upsync run . --remote http://127.0.0.1:8787 --project p1 --token-file token.txt --debounce 2s
`;

function integer(flag: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) {
    throw new ConfigError(
      `--${flag} must be an integer from ${min} to ${max}, got ${JSON.stringify(text)}`,
    );
  }
  return value;
}

function duration(flag: string, text: string, minMs: number): number {
  let ms: number;
  try {
    ms = parseDuration(text);
  } catch (error) {
    throw new ConfigError(`--${flag}: ${(error as Error).message}`);
  }
  if (ms < minMs) {
    throw new ConfigError(`--${flag} must be at least ${minMs}ms, got ${JSON.stringify(text)}`);
  }
  return ms;
}

function readToken(file: string | undefined, env: NodeJS.ProcessEnv): string {
  let token: string | undefined;
  if (file !== undefined) {
    try {
      token = readFileSync(file, 'utf8').trim();
    } catch (error) {
      throw new ConfigError(
        `--token-file: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
      );
    }
    if (token === '') throw new ConfigError(`--token-file: ${file} is empty`);
  } else {
    token = env.UPSYNC_TOKEN?.trim();
    if (!token) {
      throw new ConfigError('no token: set UPSYNC_TOKEN or give --token-file FILE');
    }
  }
  // Never quote the token: the message would print it.
  if (!/^[\x21-\x7e]+$/.test(token)) {
    throw new ConfigError('the token must be visible ASCII characters without spaces');
  }
  return token;
}

/**
 * Parses the flags of `sync` or `run`. Returns null when `--help` was asked
 * (the caller prints the help text).
 */
export function parseSyncOptions(
  command: 'sync' | 'run',
  args: string[],
  env: NodeJS.ProcessEnv,
): SyncOptions | null {
  const options = command === 'sync' ? { ...common, ...syncOnly } : { ...common, ...runOnly };
  let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[] };
  try {
    const result = parseArgs({ args, options, strict: true, allowPositionals: true });
    parsed = {
      values: result.values as Record<string, string | boolean | undefined>,
      positionals: result.positionals,
    };
  } catch (error) {
    throw new ConfigError(`${(error as Error).message}. Run "upsync ${command} --help".`);
  }
  const values = parsed.values;
  const text = (name: string): string | undefined => values[name] as string | undefined;
  if (values.help) return null;
  if (values.token !== undefined) {
    // Refused without echoing it: a flag value lands in shell history and `ps`.
    throw new ConfigError('--token is not accepted; set UPSYNC_TOKEN or use --token-file FILE');
  }
  if (parsed.positionals.length > 1) {
    throw new ConfigError(
      `one folder at most, got ${parsed.positionals.length}. Run "upsync ${command} --help".`,
    );
  }
  const dir = resolve(parsed.positionals[0] ?? '.');
  const remoteText = text('remote');
  if (remoteText === undefined) throw new ConfigError('--remote URL is required');
  let remoteUrl: URL;
  try {
    remoteUrl = new URL(remoteText);
  } catch {
    throw new ConfigError(`--remote must be a URL like https://sync.example.com`);
  }
  if (remoteUrl.protocol !== 'http:' && remoteUrl.protocol !== 'https:') {
    throw new ConfigError(`--remote must be an http or https URL, got ${remoteUrl.protocol}`);
  }
  if (remoteUrl.username !== '' || remoteUrl.password !== '') {
    throw new ConfigError('--remote must not carry credentials; use UPSYNC_TOKEN or --token-file');
  }
  const project = text('project');
  if (project === undefined) throw new ConfigError('--project ID is required');
  if (!/^[A-Za-z0-9._-]{1,128}$/.test(project)) {
    throw new ConfigError(
      `--project must be 1 to 128 characters of A-Z a-z 0-9 . _ -, got ${JSON.stringify(project)}`,
    );
  }
  const rateText = text('rate');
  let ratePerSec: number | undefined;
  if (rateText !== undefined) {
    ratePerSec = Number(rateText);
    if (rateText.trim() === '' || !(ratePerSec > 0) || !Number.isFinite(ratePerSec)) {
      throw new ConfigError(`--rate must be a number above 0, got ${JSON.stringify(rateText)}`);
    }
  }
  const burstText = text('burst');
  const burst = burstText === undefined ? undefined : integer('burst', burstText, 1, 100_000);
  if (burst !== undefined && ratePerSec === undefined) {
    throw new ConfigError('--burst needs --rate');
  }
  const only = text('only');
  if (only !== undefined) {
    const problem = keyProblem(only);
    if (problem !== undefined) throw new ConfigError(`--only: ${problem}`);
  }
  const logLevel = text('log-level') ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new ConfigError(
      `--log-level must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(logLevel)}`,
    );
  }
  if (values.quiet === true && values.verbose === true) {
    throw new ConfigError('--quiet and --verbose cannot be used together');
  }
  const stateText = text('state');
  return {
    command,
    dir,
    // Kept as given (less a trailing slash): the outbox scope is named by it.
    remote: remoteText.replace(/\/+$/, ''),
    project,
    token: readToken(text('token-file'), env),
    stateDir: stateText === undefined ? join(dir, '.upsync') : resolve(stateText),
    concurrency: integer('concurrency', text('concurrency') ?? '16', 1, 1024),
    ratePerSec,
    burst,
    attempts: integer('attempts', text('attempts') ?? '5', 1, 1000),
    retryTimeMs: duration('retry-time', text('retry-time') ?? '2m', 0),
    json: values.json === true,
    delete: values.delete === true,
    only,
    debounceMs: duration('debounce', text('debounce') ?? '10s', 0),
    shutdownTimeoutMs: duration('shutdown-timeout', text('shutdown-timeout') ?? '30s', 0),
    quiet: values.quiet === true,
    verbose: values.verbose === true,
    logLevel: logLevel as LogLevel,
  };
}
