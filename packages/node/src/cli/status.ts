// `upsync status`: what the state folder holds, from the folder alone: no
// network, no token, and no lock (it works while `upsync run` sends).
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, type OutboxScope } from '@upsync/core';
import { readLastRun, runState, type LastRunRecord } from './last-run.ts';
import { registerCommand, type CliIo } from './main.ts';
import { principalOf } from './open-engine.ts';
import {
  alignColumns,
  formatWhen,
  localIso,
  resolveTarget,
  StateReader,
  type ScopeSummary,
} from './state-inspect.ts';

export const STATUS_HELP = `Usage: upsync status [DIR] [options]

Shows what the state folder of DIR (default .) holds, for every remote,
project and principal in it: changes pending, in flight, in the dead-letter
queue (and how many the queue's cap dropped), when the remote last got
something, and the last run (or the one running now) with its circuit breaker.
It reads the state folder only: no network, no token, and it works while an
"upsync run" is sending from the same folder.

Options:
  --state DIR    the state folder (default DIR/.upsync, or as the config file says)
  --config FILE  the config file (default DIR/upsync.config.json)
  --json         print one JSON object on stdout
  --help         show this help

Examples:
  upsync status ./logs
  upsync status --state ~/.cache/upsync-logs --json | jq '.scopes[0].pending'

Exit codes: 0 shown (also when there is no state yet), 2 a usage error or a
state folder that cannot be read (it is never changed).
`;

export type LastRunState = ReturnType<typeof runState>;

/** The `--json` shape. Times are ISO 8601 (UTC); null when unknown. */
export interface StatusJson {
  readonly stateDir: string;
  /** False when the folder has no outbox yet (nothing synced). */
  readonly exists: boolean;
  readonly now: string;
  /** Whose pending changes a sync or run from here would send. */
  readonly principal: string;
  readonly lastRun: (LastRunRecord & { readonly runState: LastRunState }) | null;
  /** Why `last-run.json` was ignored, when it was. */
  readonly lastRunProblem: string | null;
  readonly scopes: readonly (Omit<ScopeSummary, 'lastSyncedAtMs'> & {
    readonly lastSyncedAt: string | null;
    /** The last run's end, when the last run was of this scope. */
    readonly lastRunEndedAt: string | null;
    /** The breaker as the last run (of this scope) last saw it. */
    readonly breaker: string | null;
  })[];
}

function ofLastRun(scope: OutboxScope, record: LastRunRecord | null): record is LastRunRecord {
  return (
    record !== null &&
    record.remote === scope.remote &&
    record.project === scope.project &&
    record.principal === scope.principal
  );
}

function outcomeLine(record: LastRunRecord): string | null {
  const o = record.outcome;
  if (!o) return null;
  return (
    `${o.attempted} items: ${o.created} created, ${o.updated} updated, ${o.deleted} deleted, ` +
    `${o.skipped} skipped, ${o.errored} errored (${o.deadLettered} dead-lettered), ` +
    `${o.timedOut} timed out; ${record.allArrived ? 'everything arrived' : 'not everything arrived'}`
  );
}

/** The last run in a few lines: what it is doing, or how it ended. */
function lastRunLines(record: LastRunRecord, state: LastRunState, nowMs: number): string[] {
  const started = formatWhen(Date.parse(record.startedAt), nowMs);
  const updated = formatWhen(Date.parse(record.updatedAt), nowMs);
  const where = `${record.remote} project ${record.project}`;
  const counts =
    record.pending === null
      ? null
      : `${record.pending} pending, ${record.inFlight ?? 0} in flight, ${record.retrying ?? 0} retrying; breaker ${record.breaker ?? 'unknown'}`;
  const lines: string[] = [];
  switch (state) {
    case 'running':
      lines.push(`running (pid ${record.pid}): upsync ${record.command} to ${where}`);
      lines.push(`started ${started}`);
      if (counts) lines.push(`as of ${updated}: ${counts}`);
      break;
    case 'elsewhere':
      lines.push(
        `running on ${record.host} (pid ${record.pid}), as of ${updated}: upsync ${record.command} to ${where}`,
      );
      if (counts) lines.push(counts);
      break;
    case 'interrupted':
      lines.push(
        `interrupted: upsync ${record.command} to ${where} (pid ${record.pid}) is gone; last seen ${updated}`,
      );
      lines.push(`started ${started}`);
      if (counts) lines.push(`it had ${counts}`);
      break;
    case 'finished':
      lines.push(
        `finished ${formatWhen(Date.parse(record.finishedAt ?? record.updatedAt), nowMs)}: upsync ${record.command} to ${where}`,
      );
      lines.push(`started ${started}`);
      lines.push(outcomeLine(record) ?? 'no outcome recorded');
      if (counts) lines.push(`left ${counts}`);
      break;
  }
  if (record.paused !== null) lines.push(`paused: ${record.paused}`);
  return lines;
}

function scopeLines(
  scope: StatusJson['scopes'][number],
  principal: string,
  nowMs: number,
): string[] {
  const when = (iso: string | null): string =>
    iso === null ? '-' : formatWhen(Date.parse(iso), nowMs);
  const mine = scope.principal === principal ? '' : ' (another principal)';
  const rows = [
    ['pending', String(scope.pending)],
    ['in flight', String(scope.inFlight)],
    ['dead letters', `${scope.deadLetters} (${scope.droppedDeadLetters} dropped by the cap)`],
    ['synced keys', String(scope.syncedKeys)],
    ['last synced', when(scope.lastSyncedAt)],
    ['last run end', when(scope.lastRunEndedAt)],
    ['breaker', scope.breaker ?? '-'],
  ];
  return [
    `${scope.remote} project ${scope.project}, principal ${scope.principal}${mine}`,
    ...alignColumns(rows, '  ').map((line) => `  ${line}`),
  ];
}

/** Reads the state folder; throws a StateError (exit 2) for an outbox that cannot be read. */
export function collectStatus(stateDir: string, nowMs: number, env: NodeJS.ProcessEnv): StatusJson {
  const reader = StateReader.open(stateDir);
  const { record, problem } = readLastRun(stateDir);
  let scopes: ScopeSummary[];
  try {
    scopes = reader?.scopes(nowMs) ?? [];
  } finally {
    reader?.close();
  }
  const state = record ? runState(record) : null;
  return {
    stateDir,
    exists: reader !== null,
    now: new Date(nowMs).toISOString(),
    principal: principalOf(env),
    lastRun: record && state ? { ...record, runState: state } : null,
    lastRunProblem: problem,
    scopes: scopes.map(({ lastSyncedAtMs, ...scope }) => {
      const last = ofLastRun(scope, record) ? record : null;
      return {
        ...scope,
        lastSyncedAt: lastSyncedAtMs === null ? null : new Date(lastSyncedAtMs).toISOString(),
        lastRunEndedAt: last?.state === 'finished' ? last.finishedAt : null,
        breaker: last?.breaker ?? null,
      };
    }),
  };
}

export function formatStatus(status: StatusJson, nowMs: number): string {
  const lines = [`upsync state in ${status.stateDir} (as of ${localIso(nowMs)})`, ''];
  if (status.lastRun) {
    lines.push('last run:');
    lines.push(
      ...lastRunLines(status.lastRun, status.lastRun.runState, nowMs).map((l) => `  ${l}`),
    );
  } else {
    lines.push('last run: none recorded');
  }
  if (status.lastRunProblem) lines.push(`  (${status.lastRunProblem})`);
  if (status.scopes.length === 0)
    lines.push('', 'the outbox holds no changes and no synced items yet');
  for (const scope of status.scopes) lines.push('', ...scopeLines(scope, status.principal, nowMs));
  return `${lines.join('\n')}\n`;
}

/** `upsync status [DIR]`; returns the exit code. */
export function status(
  args: string[],
  io: CliIo,
  env: NodeJS.ProcessEnv = process.env,
  nowMs: number = Date.now(),
): number {
  let values: {
    state?: string | undefined;
    config?: string | undefined;
    json?: boolean | undefined;
    help?: boolean | undefined;
  };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args,
      options: {
        state: { type: 'string' },
        config: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: true,
    }));
  } catch (error) {
    throw new ConfigError(`${(error as Error).message}. Run "upsync status --help".`);
  }
  if (values.help) {
    io.stdout(STATUS_HELP);
    return 0;
  }
  if (positionals.length > 1) {
    throw new ConfigError(
      `one folder at most, got ${positionals.length}. Run "upsync status --help".`,
    );
  }
  const dirArg = positionals[0];
  const dir = resolve(dirArg ?? '.');
  if (values.state === undefined && dirArg !== undefined && !isDirectory(dir)) {
    throw new ConfigError(`${dirArg} is not a folder`);
  }
  // Where `sync` would keep it: --state, UPSYNC_STATE or the config file, else DIR/.upsync.
  const { stateDir } = resolveTarget({ state: values.state, config: values.config }, dir, env);
  const result = collectStatus(stateDir, nowMs, env);
  if (values.json) {
    io.stdout(`${JSON.stringify(result)}\n`);
    return 0;
  }
  if (!result.exists && result.lastRun === null) {
    io.stdout(`no upsync state in ${stateDir} (nothing synced yet)\n`);
    return 0;
  }
  io.stdout(formatStatus(result, nowMs));
  return 0;
}

function isDirectory(path: string): boolean {
  return existsSync(path) && statSync(path).isDirectory();
}

registerCommand(
  'status',
  'show pending changes, dead letters and the last run (no network)',
  (args, io) => Promise.resolve(status(args, io)),
);
