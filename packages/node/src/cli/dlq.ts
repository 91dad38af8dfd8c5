// `upsync dlq list|retry|purge`: the dead-letter queue of one outbox scope.
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, type OutboxScope, type OutcomeEvent } from '@upsync/core';
import { SqliteOutboxStore } from '../outbox/sqlite-store.ts';
import { registerCommand, type CliIo } from './main.ts';
import { CLI_OWNER, openEngine, principalOf } from './open-engine.ts';
import type { SyncOptions } from './sync-options.ts';
import {
  alignColumns,
  formatBytes,
  formatWhen,
  OUTBOX_FILE,
  resolveTarget,
  StateReader,
  type DeadLetterSummary,
  type ScopeSummary,
  type Target,
} from './state-inspect.ts';

export const DLQ_HELP = `Usage: upsync dlq <list|retry|purge> [DIR] [KEY...] [options]

The dead-letter queue keeps the changes the remote refused for good (HTTP
400, 409, 412, 413, 422), with the reason, so they can be fixed and retried.
DIR (default .) is the synced folder; give it first when you name keys
(use . for the current folder). A KEY is an item's path in DIR, like
logs/2024/session-7.jsonl.

  upsync dlq list [DIR]            list the dead letters, oldest first
  upsync dlq retry [DIR] [KEY...]  put them (all, or the named keys) back as new
                                   versions and send them now
  upsync dlq purge [DIR] KEY...    delete the named keys' dead letters
  upsync dlq purge [DIR] --all     delete every dead letter

Options:
  --state DIR          the state folder (default DIR/.upsync)
  --config FILE        the config file (default DIR/upsync.config.json)
  --remote URL         the scope's remote; needed with --project when the state
  --project ID         folder holds more than one scope for you
  --json               list: print one JSON object on stdout
  --all                purge: every dead letter of the scope
  --help               show this help
retry sends like "upsync sync" and takes its sending options: --token-file,
--concurrency, --rate, --burst, --attempts, --retry-time, --log-level (the
token from UPSYNC_TOKEN or --token-file). Without a remote or a token it only
puts the dead letters back; the next "upsync sync" or "upsync run" sends them.

Examples:
  upsync dlq list ./logs
  upsync dlq list ./logs --json | jq -r '.deadLetters[].key'
  UPSYNC_TOKEN=... upsync dlq retry ./logs --remote https://sync.example.com --project team-logs
  upsync dlq retry . logs/session-7.jsonl --remote http://127.0.0.1:8787 --project p1
  upsync dlq purge ./logs logs/huge.bin
  upsync dlq purge ./logs --all

Exit codes: 0 done (retry: every retried change arrived, or they were put
back to be sent later), 1 a retried change did not arrive (it is back in the
queue or pending) or a named key has no dead letter (then nothing changed),
2 a usage error, several scopes and no --remote/--project, or a state folder
that cannot be used.
`;

const SCOPE_OPTIONS = {
  state: { type: 'string' },
  config: { type: 'string' },
  remote: { type: 'string' },
  project: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const ACTION_OPTIONS = {
  list: { ...SCOPE_OPTIONS, json: { type: 'boolean' } },
  purge: { ...SCOPE_OPTIONS, all: { type: 'boolean' } },
  retry: {
    ...SCOPE_OPTIONS,
    'token-file': { type: 'string' },
    token: { type: 'string' },
    concurrency: { type: 'string' },
    rate: { type: 'string' },
    burst: { type: 'string' },
    attempts: { type: 'string' },
    'retry-time': { type: 'string' },
    'log-level': { type: 'string' },
  },
} as const;

type Action = keyof typeof ACTION_OPTIONS;
type Values = Record<string, string | boolean | undefined>;

function isDirectory(path: string): boolean {
  return existsSync(path) && statSync(path).isDirectory();
}

const describeScope = (scope: OutboxScope): string => `${scope.remote} project ${scope.project}`;

type Picked =
  | { readonly kind: 'scope'; readonly scope: OutboxScope }
  | { readonly kind: 'none' }
  | { readonly kind: 'ambiguous'; readonly scopes: readonly ScopeSummary[] };

/** The given scope; else the one scope of this principal the folder holds. */
function pickScope(scopes: readonly ScopeSummary[], target: Target, principal: string): Picked {
  if (target.remote !== undefined && target.project !== undefined) {
    return { kind: 'scope', scope: { remote: target.remote, project: target.project, principal } };
  }
  const mine = scopes.filter(
    (scope) =>
      scope.principal === principal &&
      (target.remote === undefined || scope.remote === target.remote) &&
      (target.project === undefined || scope.project === target.project),
  );
  const [only] = mine;
  if (mine.length === 1 && only) {
    return {
      kind: 'scope',
      scope: { remote: only.remote, project: only.project, principal },
    };
  }
  return mine.length === 0 ? { kind: 'none' } : { kind: 'ambiguous', scopes: mine };
}

interface Queue {
  readonly stateDir: string;
  readonly exists: boolean;
  readonly scope: OutboxScope | null;
  readonly deadLetters: readonly DeadLetterSummary[];
  readonly dropped: number;
  readonly target: Target;
}

/** Reads the scope's dead letters read-only; null when the scope is ambiguous (exit 2, said). */
function readQueue(
  action: Action,
  values: Values,
  dir: string,
  io: CliIo,
  env: NodeJS.ProcessEnv,
): Queue | null {
  const target = resolveTarget(values, dir, env);
  const principal = principalOf(env);
  const reader = StateReader.open(target.stateDir);
  const empty = { stateDir: target.stateDir, target, deadLetters: [], dropped: 0 };
  if (!reader) {
    const scope =
      target.remote !== undefined && target.project !== undefined
        ? { remote: target.remote, project: target.project, principal }
        : null;
    return { ...empty, exists: false, scope };
  }
  try {
    const scopes = reader.scopes(Date.now());
    const picked = pickScope(scopes, target, principal);
    if (picked.kind === 'none') return { ...empty, exists: true, scope: null };
    if (picked.kind === 'ambiguous') {
      io.stderr(
        `upsync dlq ${action}: the state folder ${target.stateDir} holds ${picked.scopes.length} ` +
          `scopes for ${principal}; name one with --remote URL --project ID:\n` +
          picked.scopes
            .map((scope) => `  --remote ${scope.remote} --project ${scope.project}\n`)
            .join(''),
      );
      return null;
    }
    const { scope } = picked;
    const summary = scopes.find(
      (s) => s.remote === scope.remote && s.project === scope.project && s.principal === principal,
    );
    return {
      stateDir: target.stateDir,
      exists: true,
      target,
      scope,
      deadLetters: reader.deadLetters(scope),
      dropped: summary?.droppedDeadLetters ?? 0,
    };
  } finally {
    reader.close();
  }
}

/** The dead letters of the named keys (all when none are named), and the named keys that have none. */
function select(
  queue: Queue,
  keys: readonly string[],
): { chosen: DeadLetterSummary[]; unknown: string[] } {
  if (keys.length === 0) return { chosen: [...queue.deadLetters], unknown: [] };
  const named = new Set(keys);
  const found = new Set(queue.deadLetters.map((row) => row.key));
  return {
    chosen: queue.deadLetters.filter((row) => named.has(row.key)),
    unknown: [...named].filter((key) => !found.has(key)),
  };
}

function noState(queue: Queue): string {
  return `no upsync state in ${queue.stateDir} (nothing synced yet)`;
}

function list(queue: Queue, json: boolean, io: CliIo, nowMs: number): number {
  if (json) {
    io.stdout(
      `${JSON.stringify({
        stateDir: queue.stateDir,
        scope: queue.scope,
        count: queue.deadLetters.length,
        dropped: queue.dropped,
        deadLetters: queue.deadLetters.map(({ deadLetteredAtMs, ...row }) => ({
          ...row,
          deadLetteredAt: new Date(deadLetteredAtMs).toISOString(),
        })),
      })}\n`,
    );
    return 0;
  }
  if (!queue.exists) {
    io.stdout(`${noState(queue)}\n`);
    return 0;
  }
  if (!queue.scope) {
    io.stdout(`no dead letters: the state folder ${queue.stateDir} holds nothing of yours\n`);
    return 0;
  }
  const where = describeScope(queue.scope);
  const dropped = `${queue.dropped} dropped by the cap`;
  if (queue.deadLetters.length === 0) {
    io.stdout(`no dead letters for ${where} (${dropped})\n`);
    return 0;
  }
  const rows = [
    ['KEY', 'STATUS', 'ATTEMPTS', 'SIZE', 'DEAD-LETTERED', 'REASON'],
    ...queue.deadLetters.map((row) => [
      row.kind === 'delete' ? `${row.key} (delete)` : row.key,
      row.status === null ? '-' : String(row.status),
      String(row.attempts),
      formatBytes(row.size),
      formatWhen(row.deadLetteredAtMs, nowMs),
      row.reason,
    ]),
  ];
  io.stdout(
    `${queue.deadLetters.length} dead letters for ${where} (${dropped}), oldest first:\n` +
      `${alignColumns(rows).join('\n')}\n`,
  );
  return 0;
}

function unknownKeys(action: Action, unknown: readonly string[], io: CliIo): number {
  io.stderr(
    `upsync dlq ${action}: no dead letter for ${unknown.map((key) => JSON.stringify(key)).join(', ')}; ` +
      `nothing was ${action === 'purge' ? 'purged' : 'retried'} (see "upsync dlq list")\n`,
  );
  return 1;
}

async function purge(
  queue: Queue,
  keys: readonly string[],
  all: boolean,
  io: CliIo,
): Promise<number> {
  const { chosen, unknown } = select(queue, keys);
  if (unknown.length > 0) return unknownKeys('purge', unknown, io);
  if (!queue.scope || chosen.length === 0) {
    io.stdout(queue.exists ? 'no dead letters to purge\n' : `${noState(queue)}\n`);
    return 0;
  }
  const store = openStore(queue.stateDir);
  let purged: number;
  try {
    purged = await store.purgeDeadLetters(
      queue.scope,
      all ? {} : { seqs: chosen.map((row) => row.seq) },
    );
  } finally {
    await store.close();
  }
  io.stdout(`purged ${purged} dead letters of ${describeScope(queue.scope)}\n`);
  return 0;
}

function openStore(stateDir: string): SqliteOutboxStore {
  return new SqliteOutboxStore({ path: join(stateDir, OUTBOX_FILE) });
}

/** Puts the dead letters back as new versions, holding the lock so no sender is running meanwhile. */
async function requeue(
  stateDir: string,
  scope: OutboxScope,
  chosen: readonly DeadLetterSummary[],
): Promise<Map<number, string>> {
  const store = openStore(stateDir);
  const requeued = new Map<number, string>();
  try {
    // A running sender would not pick them up before its next start: refuse while one runs.
    const lock = await store.lock(CLI_OWNER);
    try {
      for (const row of chosen) {
        const pending = await store.retryDeadLetter(scope, row.seq);
        if (pending) requeued.set(pending.seq, pending.key);
      }
    } finally {
      await lock.release();
    }
  } finally {
    await store.close();
  }
  return requeued;
}

/** Sends what is pending (the requeued versions among it); returns each requeued seq's outcome. */
async function send(
  options: SyncOptions,
  scope: OutboxScope,
  requeued: ReadonlyMap<number, string>,
  io: CliIo,
): Promise<{ outcomes: Map<number, OutcomeEvent>; paused: string | null; others: number }> {
  const opened = await openEngine(options, io, { label: 'dlq retry', principal: scope.principal });
  const outcomes = new Map<number, OutcomeEvent>();
  let others = 0;
  const off = opened.engine.on('outcome', (event) => {
    if (requeued.has(event.seq)) outcomes.set(event.seq, event);
    else others++;
  });
  try {
    let failure: { error: unknown } | undefined;
    try {
      await opened.engine.flush();
    } catch (error) {
      failure = { error };
    }
    const report = await opened.engine.shutdown({ timeoutMs: options.shutdownTimeoutMs });
    if (failure) throw failure.error;
    return { outcomes, paused: report.paused?.message ?? null, others };
  } finally {
    off();
    await opened.close();
  }
}

async function retry(queue: Queue, keys: readonly string[], io: CliIo): Promise<number> {
  const name = 'upsync dlq retry';
  const { chosen, unknown } = select(queue, keys);
  if (unknown.length > 0) return unknownKeys('retry', unknown, io);
  if (!queue.scope || chosen.length === 0) {
    io.stdout(queue.exists ? 'no dead letters to retry\n' : `${noState(queue)}\n`);
    return 0;
  }
  const scope = queue.scope;
  const requeued = await requeue(queue.stateDir, scope, chosen);
  const where = describeScope(scope);
  const options = queue.target.options;
  if (!options) {
    io.stdout(
      `${name}: put ${requeued.size} dead letters of ${where} back in the outbox; not sent now ` +
        `(${queue.target.unsent ?? 'not configured'}): the next "upsync sync" or "upsync run" sends them\n`,
    );
    return 0;
  }
  const { outcomes, paused, others } = await send(options, scope, requeued, io);
  let arrived = 0;
  let dead = 0;
  let failed = 0;
  for (const [seq, key] of requeued) {
    const event = outcomes.get(seq);
    if (event && event.outcome !== 'errored' && event.outcome !== 'timedOut') {
      arrived++;
      continue;
    }
    if (event?.deadLettered) dead++;
    else failed++;
    const where = event?.deadLettered
      ? 'back in the dead-letter queue'
      : event?.outcome === 'errored'
        ? 'failed'
        : 'still pending';
    io.stderr(`${name}: ${where}: ${key}${event?.error ? `: ${event.error}` : ''}\n`);
  }
  io.stdout(
    `${name}: ${requeued.size} dead letters of ${where} sent again: ${arrived} arrived, ` +
      `${dead} back in the dead-letter queue, ${failed} not arrived (pending)` +
      `${others > 0 ? `; ${others} other pending changes were sent along` : ''}\n`,
  );
  if (paused) io.stderr(`${name}: ${paused}\n`);
  return arrived === requeued.size ? 0 : 1;
}

/** `upsync dlq <list|retry|purge>`; returns the exit code. */
export async function dlq(
  args: string[],
  io: CliIo,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  const [actionArg, ...rest] = args;
  if (
    actionArg === undefined ||
    actionArg === '--help' ||
    actionArg === '-h' ||
    actionArg === 'help'
  ) {
    io.stdout(DLQ_HELP);
    return actionArg === undefined ? 2 : 0;
  }
  if (!Object.hasOwn(ACTION_OPTIONS, actionArg)) {
    throw new ConfigError(
      `unknown action ${JSON.stringify(actionArg)}: use list, retry or purge. Run "upsync dlq --help".`,
    );
  }
  const action = actionArg as Action;
  let values: Values;
  let positionals: string[];
  try {
    const parsed = parseArgs({
      args: rest,
      options: ACTION_OPTIONS[action],
      strict: true,
      allowPositionals: true,
    });
    values = parsed.values as Values;
    positionals = parsed.positionals;
  } catch (error) {
    throw new ConfigError(`${(error as Error).message}. Run "upsync dlq --help".`);
  }
  if (values.help) {
    io.stdout(DLQ_HELP);
    return 0;
  }
  // DIR comes first when given; it is told from a key by being a folder.
  const [first, ...others] = positionals;
  const firstIsDir = first !== undefined && isDirectory(resolve(first));
  const dir = firstIsDir ? first : '.';
  const keys = firstIsDir ? others : positionals;
  if (action === 'list' && keys.length > 0) {
    throw new ConfigError(
      `${JSON.stringify(keys[0])} is not a folder; "upsync dlq list" takes one DIR. Run "upsync dlq --help".`,
    );
  }
  if (action === 'purge') {
    if (keys.length === 0 && values.all !== true) {
      throw new ConfigError('name the keys to purge, or pass --all to purge every dead letter');
    }
    if (keys.length > 0 && values.all === true) {
      throw new ConfigError('give keys or --all, not both');
    }
  }
  const queue = readQueue(action, values, dir, io, env);
  if (!queue) return 2;
  switch (action) {
    case 'list':
      return list(queue, values.json === true, io, Date.now());
    case 'purge':
      return purge(queue, keys, values.all === true, io);
    case 'retry':
      return retry(queue, keys, io);
  }
}

registerCommand('dlq', 'list, retry or purge the dead-letter queue', (args, io) => dlq(args, io));
