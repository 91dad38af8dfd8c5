import { ConfigError } from '@upsync/core';
import { resolveSettings } from './config/resolve-settings.ts';
import { LOG_LEVELS, type LogLevel } from './config/settings.ts';

export { LOG_LEVELS, type LogLevel };
export { resolveSettings };

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
  /** `--shutdown-timeout`: how long a stopped command waits for sends in flight. */
  readonly shutdownTimeoutMs: number;
  /** `--quiet`: only errors and the final one-line verdict. */
  readonly quiet: boolean;
  /** `--verbose`: every outcome and retry as a plain line. */
  readonly verbose: boolean;
  /** `--log-level`: the state folder's log file. */
  readonly logLevel: LogLevel;
  /**
   * upsync's own files (the config file, the token file), absolute: never
   * synced, even when they lie inside the folder.
   */
  readonly ownFiles: readonly string[];
}

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
  -q, --quiet              print only errors and the final one-line verdict
  --verbose                print every outcome and retry as a plain line
  --log-level LEVEL        the state folder's log file: trace, debug, info, warn, error
                           or silent (default info)
  --config FILE            the config file (default DIR/upsync.config.json; a named one must exist)
  --no-FLAG                turn off a yes/no setting the environment or the file turned on
  --help                   show this help

Settings also come from UPSYNC_* variables and upsync.config.json; a flag beats
the environment, which beats the file. See \`upsync config --help\`.

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
  --shutdown-timeout DURATION  after the pass, or when stopped with q or Ctrl-C, how long to
                           wait for sends in flight (default 30s)
${COMMON_HELP}
Examples:
  UPSYNC_TOKEN=... upsync sync ./logs --remote https://sync.example.com --project team-logs
  upsync sync ./logs --remote http://127.0.0.1:8787 --project p1 --token-file ~/.upsync-token --delete
  upsync sync ./logs --remote http://127.0.0.1:8787 --project p1 --only 2024/session-7.jsonl
  upsync sync . --remote http://127.0.0.1:8787 --project p1 --rate 5 --json > report.json
  upsync sync ./logs    # remote, project and tokenFile in ./logs/upsync.config.json
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
  UPSYNC_DEBOUNCE=2s upsync run ./notes   # the rest from ./notes/upsync.config.json
`;

const REQUIRED_HINT = {
  remote: 'remote is not set: give --remote URL, UPSYNC_REMOTE or "remote" in the config file',
  project: 'project is not set: give --project ID, UPSYNC_PROJECT or "project" in the config file',
  token:
    'no token: set UPSYNC_TOKEN, or name a file holding it with --token-file FILE, UPSYNC_TOKEN_FILE or "tokenFile" in the config file',
} as const;

/**
 * The checked options of `sync` or `run` from their flags, the UPSYNC_*
 * environment and the config file (see resolveSettings). Returns null when
 * `--help` was asked (the caller prints the help text).
 */
export function parseSyncOptions(
  command: 'sync' | 'run',
  args: string[],
  env: NodeJS.ProcessEnv,
): SyncOptions | null {
  const resolved = resolveSettings(command, args, env);
  if (resolved === null) return null;
  const [missing] = resolved.missing;
  if (missing !== undefined) throw new ConfigError(REQUIRED_HINT[missing]);
  const s = resolved.settings;
  // Every one below has a default or was just checked as present.
  const value = <T>(setting: { value: T | undefined }): T => setting.value as T;
  return {
    command,
    dir: resolved.dir,
    remote: value(s.remote),
    project: value(s.project),
    token: resolved.token!.secret.reveal(),
    stateDir: value(s.state),
    concurrency: value(s.concurrency),
    ratePerSec: s.rate.value,
    burst: s.burst.value,
    attempts: value(s.attempts),
    retryTimeMs: value(s.retryTime),
    json: value(s.json),
    delete: value(s.delete),
    only: s.only.value,
    debounceMs: value(s.debounce),
    shutdownTimeoutMs: value(s.shutdownTimeout),
    quiet: value(s.quiet),
    verbose: value(s.verbose),
    logLevel: value(s.logLevel),
    ownFiles: [
      ...(resolved.configFile.found ? [resolved.configFile.path] : []),
      ...(resolved.token?.file === undefined ? [] : [resolved.token.file]),
    ],
  };
}
