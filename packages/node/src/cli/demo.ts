import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import picocolors from 'picocolors';
import { ConfigError, formatDuration } from '@upsync/core';
import type { FaultSettings } from '@upsync/server';
import { clientLine, glossaryText, serverLine } from './demo-report.ts';
import { sampleSessions, type SampleFile } from './demo-sample.ts';
import { countStatus, startDemoServer, storedPuts, type DemoServer } from './demo-server.ts';
import { openWorkspace, type Workspace } from './demo-workspace.ts';
import { watchStopKeys } from './demo-terminal.ts';
import { rewriteFiles } from './demo-writer.ts';
import { registerCommand, type CliIo } from './main.ts';
import { processTerminal, type Terminal } from './panel/terminal.ts';
import type { CliReport } from './print-report.ts';
import { run } from './run.ts';
import { sync } from './sync.ts';

const usage = `Usage: upsync demo [options]

A short tour. Starts the reference server in this process on a free port of
127.0.0.1 with injected faults (a rate limit answered 429, a few 503s), writes
a folder of AI-tool session logs, mirrors it with "upsync sync", keeps it
mirrored with "upsync run" while a few logs are rewritten 20 times a second,
checks that the server has every file's latest content, and explains the
numbers of the report. Everything it wrote is removed at the end (unless
--keep) and nothing is left running.

Options:
  --files N      session logs to write (default 300)
  --seconds S    how long the logs are rewritten under "upsync run" (default 5)
  --seed N       the seed of the sample and of the faults (default 1)
  --dir DIR      where to write: a new or empty folder (default a temporary one)
  --keep         keep the folder, the state folder and the server's data; print where
  --help         show this help

Exit codes: 0 the tour ran to its end (the injected faults are part of it),
1 the server ended up without some file's latest content, 2 a bad option,
130 stopped with Ctrl-C (a second Ctrl-C quits at once).

Examples:
  npm start                          the tour with its defaults (what the README's first command runs)
  upsync demo --files 1000 --seconds 10
  upsync demo --dir ./tour --keep    keep the folder, its state and the server's data to look at
`;

const PROJECT = 'demo';
const RATE_LIMIT = { requestsPerSecond: 40, burst: 10 };
const SHARE_503 = 0.02;
const DEBOUNCE = '2s';
const LIVE_FILES = 3;
const WRITES_PER_SECOND = 20;
/** After the last write, long enough for the watcher (at most ~100 ms) to have reported it. */
const SETTLE_MS = 750;

export interface DemoOptions {
  /** Stops the demo when aborted; default: SIGINT or SIGTERM (a second one quits at once). */
  stopSignal?: AbortSignal;
  /** Colour in the demo's own lines; default: when stdout is a terminal and NO_COLOR is unset. */
  color?: boolean;
}

interface DemoSettings {
  readonly files: number;
  readonly seconds: number;
  readonly seed: number;
  readonly dir: string | undefined;
  readonly keep: boolean;
}

const flags = {
  files: { type: 'string' },
  seconds: { type: 'string' },
  seed: { type: 'string' },
  dir: { type: 'string' },
  keep: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function integer(flag: string, text: string | undefined, fallback: number, max: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < 1 || value > max) {
    throw new ConfigError(
      `--${flag} must be an integer from 1 to ${max}, got ${JSON.stringify(text)}`,
    );
  }
  return value;
}

/** The demo's flags, or null for --help. */
function parseDemoFlags(args: string[]): DemoSettings | null {
  let values: ReturnType<typeof parseArgs<{ options: typeof flags }>>['values'];
  try {
    ({ values } = parseArgs({ args, options: flags, strict: true, allowPositionals: false }));
  } catch (error) {
    throw new ConfigError(`${(error as Error).message}. Run "upsync demo --help".`);
  }
  if (values.help) return null;
  return {
    files: integer('files', values.files, 300, 20_000),
    seconds: integer('seconds', values.seconds, 5, 600),
    seed: integer('seed', values.seed, 1, 2 ** 32 - 1),
    dir: values.dir,
    keep: values.keep === true,
  };
}

/**
 * The environment the demo's commands see, built from nothing: the token, and
 * only what changes how output looks, so no UPSYNC_* variable of the user's
 * (UPSYNC_CONFIG included) can change what the demo does.
 */
function commandEnv(token: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { UPSYNC_TOKEN: token };
  for (const name of ['TERM', 'NO_COLOR', 'FORCE_COLOR', 'COLUMNS', 'LINES']) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}

function writeSample(root: string, files: readonly SampleFile[]): number {
  let bytes = 0;
  for (const file of files) {
    const path = join(root, ...file.key.split('/'));
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, file.content);
    bytes += Buffer.byteLength(file.content);
  }
  return bytes;
}

/** The logs of the latest day: the sessions a tool would still be writing. */
function liveKeys(files: readonly SampleFile[]): string[] {
  const day = (key: string): string => key.split('/')[2] ?? '';
  return files
    .map((file) => file.key)
    .sort((a, b) => (day(a) === day(b) ? (a < b ? -1 : 1) : day(a) < day(b) ? 1 : -1))
    .slice(0, LIVE_FILES);
}

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

/** The keys whose current content on disk the server does not have. */
async function missingOnServer(
  server: DemoServer,
  root: string,
  keys: readonly string[],
): Promise<string[]> {
  const stored = await server.contents();
  return keys.filter(
    (key) => stored.get(key) !== sha256(readFileSync(join(root, ...key.split('/')))),
  );
}

function megabytes(bytes: number): string {
  return `${(bytes / 1_000_000).toFixed(bytes < 100_000 ? 2 : 1)} MB`;
}

/**
 * Follows the stop requests (SIGINT, SIGTERM, or `given` in tests): the first
 * aborts `stop`, a second one calls `quitNow`. Returns the request function
 * (the panel's stop keys call it too) and the function that stops listening.
 */
function listenForStop(
  stop: AbortController,
  given: AbortSignal | undefined,
  quitNow: () => void,
): { request: () => void; off: () => void } {
  const request = (): void => {
    if (stop.signal.aborted) quitNow();
    else stop.abort();
  };
  if (given) {
    if (given.aborted) stop.abort();
    else given.addEventListener('abort', request, { once: true });
    return { request, off: () => given.removeEventListener('abort', request) };
  }
  process.on('SIGINT', request);
  process.on('SIGTERM', request);
  return {
    request,
    off: () => {
      process.off('SIGINT', request);
      process.off('SIGTERM', request);
    },
  };
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** `upsync demo`: returns the exit code once everything it started is stopped and removed. */
export async function demo(
  args: string[],
  io: CliIo,
  demoOptions: DemoOptions = {},
): Promise<number> {
  const settings = parseDemoFlags(args);
  if (!settings) {
    io.stdout(usage);
    return 0;
  }
  const c = picocolors.createColors(
    demoOptions.color ?? (process.stdout.isTTY === true && (process.env['NO_COLOR'] ?? '') === ''),
  );
  const say = (text = ''): void => io.stdout(`${text}\n`);
  const workspace = openWorkspace(settings.dir);
  const stop = new AbortController();
  const stopRequests = listenForStop(stop, demoOptions.stopSignal, () => {
    // A second Ctrl-C: the user will not wait for a graceful stop.
    if (!settings.keep) {
      try {
        workspace.remove();
      } catch {
        // Quitting anyway; the folder is named in the line below.
      }
    }
    io.stderr(`\nupsync demo: quit${settings.keep ? '' : `; removed ${workspace.root}`}\n`);
    process.exit(130);
  });
  let server: DemoServer | undefined;
  try {
    // A recognisable shape (udt_ = upsync demo token), so a test can prove it is never printed.
    const token = `udt_${randomBytes(24).toString('base64url')}`;
    const faults: Partial<FaultSettings> = { rateLimit: RATE_LIMIT, share503: SHARE_503 };
    server = await startDemoServer({
      dataDir: workspace.serverData,
      project: PROJECT,
      token,
      faults,
      seed: settings.seed,
      onError: (error) =>
        io.stderr(`upsync demo: server error: ${(error as Error)?.message ?? String(error)}\n`),
    });
    const env = commandEnv(token);
    const terminal = watchStopKeys(processTerminal(env), stopRequests.request);
    const commands = { env, terminal, callerStop: demoOptions.stopSignal };
    const code = await tour(settings, workspace, server, commands, stop.signal, say, io, c);
    if (stop.signal.aborted) {
      io.stderr(`upsync demo: stopped\n`);
      return 130;
    }
    return code;
  } finally {
    await server?.close();
    if (settings.keep) {
      say(
        `Kept in ${workspace.root}: sessions/ (the folder), state/ (outbox and digest cache), server/ (the server's data; "upsync serve --data ${workspace.serverData}" serves it again), upsync.config.json (empty, given to both commands).`,
      );
    } else {
      try {
        workspace.remove();
        say(c.dim(`Cleaned up: removed ${workspace.root} (--keep keeps it).`));
      } catch (error) {
        io.stderr(
          `upsync demo: could not remove ${workspace.root}: ${(error as NodeJS.ErrnoException).code ?? 'error'}\n`,
        );
      }
    }
    // Last: a Ctrl-C while cleaning up quits through quitNow, which still removes the folder.
    stopRequests.off();
  }
}

/** The tour itself: steps 1 and 2, the check, the report. Returns the exit code. */
async function tour(
  settings: DemoSettings,
  workspace: Workspace,
  server: DemoServer,
  commands: {
    env: NodeJS.ProcessEnv;
    terminal: Terminal | null;
    callerStop: AbortSignal | undefined;
  },
  stopSignal: AbortSignal,
  say: (text?: string) => void,
  io: CliIo,
  c: ReturnType<typeof picocolors.createColors>,
): Promise<number> {
  const { env, terminal } = commands;
  const common = [
    '--remote',
    server.url,
    '--project',
    PROJECT,
    '--state',
    workspace.state,
    '--concurrency',
    '16',
    '--attempts',
    '10',
    '--retry-time',
    '2m',
    // The demo's own empty config file and an env built from nothing (commandEnv):
    // no setting of the user's reaches the commands. The yes/no flags only
    // spell out what the tour relies on.
    '--config',
    workspace.config,
    '--no-delete',
    '--no-json',
    '--no-quiet',
  ];
  const files = sampleSessions(settings.files, settings.seed);
  const bytes = writeSample(workspace.sessions, files);
  const keys = files.map((file) => file.key);
  const tools = new Set(keys.map((key) => key.split('/')[0])).size;

  say(c.bold('upsync demo: a short tour against a local server with injected faults'));
  say(
    `  ${c.bold('server')}  ${server.url}, in this process, with a token made for this tour (never shown)`,
  );
  say(
    `  ${c.bold('faults')}  a rate limit of ${RATE_LIMIT.requestsPerSecond} requests/s (burst ${RATE_LIMIT.burst}) answered 429 with Retry-After, and ${SHARE_503 * 100}% of requests answered 503`,
  );
  say(
    `  ${c.bold('folder')}  ${workspace.sessions}: ${files.length} session logs of ${tools} AI coding tools (JSONL, ${megabytes(bytes)})`,
  );
  say();

  // Step 1: one full pass.
  say(
    `${c.bold(c.cyan('Step 1/2  upsync sync'))}: mirror the folder once. One listing of the server, then a PUT for each file it lacks, at the pace it allows; each 429 and 503 is retried.`,
  );
  const syncArgs = [workspace.sessions, ...common];
  say(c.dim(`  $ upsync sync ${syncArgs.join(' ')}`));
  const syncTally = server.step('sync');
  const startedMs = Date.now();
  if (stopSignal.aborted) return 130;
  let syncReport: CliReport | undefined;
  // sync takes SIGINT, SIGTERM and the panel's keys itself, whatever it is
  // given: handing it the demo's own stop would count each of those twice
  // (and a second stop cuts its wait for the sends in flight short). Only the
  // caller's signal is news to it.
  const syncCode = await sync(syncArgs, io, {
    env,
    terminal,
    ...(commands.callerStop ? { stopSignal: commands.callerStop } : {}),
    onReport: (report) => (syncReport = report),
  });
  if (stopSignal.aborted) return 130;
  const syncMs = Date.now() - startedMs;
  const stored = storedPuts(syncTally);
  say(
    `  ${c.green('→')} ${stored} of ${files.length} files stored in ${formatDuration(syncMs)}; ${serverLine(syncTally)}${countStatus(syncTally, 429) + countStatus(syncTally, 503) > 0 ? ' (each retried)' : ''}`,
  );
  if (syncCode !== 0) {
    say(`  Some files did not arrive in time; "upsync run" sends them first.`);
  }
  say();

  // Step 2: keep it mirrored while a few logs are rewritten many times a second.
  const live = liveKeys(files);
  const contents = new Map(
    files.filter((file) => live.includes(file.key)).map((f) => [f.key, f.content]),
  );
  say(
    `${c.bold(c.cyan('Step 2/2  upsync run'))}: keep the folder mirrored. A file's first change goes at once, later ones at most every ${DEBOUNCE} (the newest content wins).`,
  );
  say(
    `  Meanwhile ${live.length} session logs are rewritten ${WRITES_PER_SECOND} times a second each for ${settings.seconds}s, like a tool streaming its answers.`,
  );
  const runArgs = [
    workspace.sessions,
    ...common,
    '--debounce',
    DEBOUNCE,
    '--shutdown-timeout',
    '30s',
  ];
  say(c.dim(`  $ upsync run ${runArgs.join(' ')}`));
  if (stopSignal.aborted) return 130;
  const runTally = server.step('run');
  const runStop = new AbortController();
  const stopRun = (): void => runStop.abort();
  stopSignal.addEventListener('abort', stopRun, { once: true });
  let writes = 0;
  let writer: Promise<void> = Promise.resolve();
  let runReport: CliReport | undefined;
  let runCode: number;
  try {
    runCode = await run(runArgs, io, {
      env,
      terminal,
      stopSignal: runStop.signal,
      onReport: (report) => (runReport = report),
      onReady: () => {
        writer = rewriteFiles({
          root: workspace.sessions,
          scratch: workspace.root,
          files: contents,
          perSecond: WRITES_PER_SECOND,
          durationMs: settings.seconds * 1000,
          signal: runStop.signal,
        })
          .then(async (count) => {
            writes = count;
            await pause(SETTLE_MS, runStop.signal);
          })
          .catch((error: unknown) => {
            io.stderr(`upsync demo: writing the logs failed: ${(error as Error).message}\n`);
          })
          .finally(() => runStop.abort());
      },
    });
  } finally {
    runStop.abort();
    stopSignal.removeEventListener('abort', stopRun);
    await writer;
  }
  if (stopSignal.aborted) return 130;
  const sends = storedPuts(runTally, live);
  const coalesced = runReport?.coalesced;
  say(
    `  ${c.green('→')} ${writes} writes became ${sends} PUTs${coalesced === undefined ? '' : ` (${coalesced} changes coalesced: replaced by a newer one before they were sent)`}; ${serverLine(runTally)}`,
  );
  say();

  const missing = await missingOnServer(server, workspace.sessions, keys);
  if (missing.length > 0) {
    say(
      `${c.red('✘')} the server lacks the latest content of ${missing.length} files: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', ...' : ''}`,
    );
  } else {
    say(`${c.green('✔')} the server has every file's latest content (${keys.length} files)`);
  }
  say();

  say(c.bold('The report'));
  for (const [name, tally, report] of [
    ['sync', syncTally, syncReport],
    ['run', runTally, runReport],
  ] as const) {
    const client = clientLine(report);
    say(
      `  ${c.bold(name.padEnd(4))}  ${client === undefined ? '' : `${client}; `}${serverLine(tally)}`,
    );
  }
  say(`  exit codes: sync ${syncCode}, run ${runCode}`);
  say();
  io.stdout(glossaryText(c));
  return missing.length > 0 ? 1 : 0;
}

registerCommand(
  'demo',
  'a two-minute tour against a local server with injected faults',
  (args, io) => demo(args, io),
);
