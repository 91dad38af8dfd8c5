import { formatDuration, type EngineReport, type ReportedError } from '@upsync/core';
import picocolors from 'picocolors';
import type { DigestCacheStats } from '../source/digest-cache.ts';
import type { CliIo } from './main.ts';

/** What stays in the outbox once the command is done (every run's, not only this one's). */
export interface LeftInOutbox {
  /** Versions waiting to be sent: the next `sync` or `run` sends them. */
  readonly pending: number;
  /** Versions the remote refused for good: `upsync dlq retry` puts them back. */
  readonly deadLetters: number;
}

/** The JSON report: the engine's, with the folder source's reads beside it. */
export interface CliReport extends EngineReport {
  readonly durationMs: number;
  readonly files: { readonly read: number; readonly bytesRead: number; readonly cached: number };
  /** Added later; absent when the outbox could not be read. */
  readonly left?: LeftInOutbox;
  /** `sync` was stopped (q, Ctrl-C, a signal) before its pass ended: the counts cover only part of the folder. */
  readonly stopped?: boolean;
}

export interface PrintOptions {
  /** --json: the report alone, on stdout. */
  readonly json: boolean;
  /** --quiet: the errors and the verdict only. */
  readonly quiet?: boolean;
  readonly color?: boolean;
}

/** Keys named per cause; the JSON report has them all. */
const KEYS_PER_CAUSE = 3;
/** Causes listed; the rest are summed up in one line. */
const MAX_CAUSES = 10;

export function cliReport(
  report: EngineReport,
  files: DigestCacheStats,
  left?: LeftInOutbox | null,
): CliReport {
  return {
    ...report,
    durationMs: report.elapsedMs,
    files: { read: files.filesRead, bytesRead: files.bytesRead, cached: files.hits },
    ...(left ? { left: { pending: left.pending, deadLetters: left.deadLetters } } : {}),
  };
}

/** What became of the items of one cause. */
function stateOf(error: ReportedError): 'dead-lettered' | 'pending' | 'failed' {
  if (error.deadLettered) return 'dead-lettered';
  return error.outcome === 'timedOut' ? 'pending' : 'failed';
}

function causeOf(error: ReportedError): string {
  if (error.status === null || error.message.includes(String(error.status))) return error.message;
  return `HTTP ${error.status}: ${error.message}`;
}

export interface ErrorGroup {
  readonly cause: string;
  readonly state: 'dead-lettered' | 'pending' | 'failed';
  readonly keys: readonly string[];
}

/** The reported errors by cause (status and message) and fate, the largest group first. */
export function groupErrors(errors: readonly ReportedError[]): ErrorGroup[] {
  const groups = new Map<string, { cause: string; state: ErrorGroup['state']; keys: string[] }>();
  for (const error of errors) {
    const cause = causeOf(error);
    const state = stateOf(error);
    const id = `${state}\u0000${cause}`;
    let group = groups.get(id);
    if (!group) {
      group = { cause, state, keys: [] };
      groups.set(id, group);
    }
    group.keys.push(error.key);
  }
  return [...groups.values()].sort((a, b) => b.keys.length - a.keys.length);
}

function keyList(keys: readonly string[]): string {
  const shown = keys.slice(0, KEYS_PER_CAUSE).join(', ');
  return keys.length > KEYS_PER_CAUSE ? `${shown} and ${keys.length - KEYS_PER_CAUSE} more` : shown;
}

const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

/** The one line that says whether everything arrived. */
export function verdictLine(report: CliReport): { ok: boolean; text: string } {
  const r = report;
  const missing = r.errored + r.timedOut + r.inProgress;
  if (r.stopped === true) {
    const arrived = r.created + r.updated + r.deleted + r.skipped;
    return {
      ok: false,
      text:
        r.attempted === 0
          ? '✘ stopped before anything was sent; the next sync does it all'
          : `✘ stopped: ${arrived} of ${plural(r.attempted, 'item')} arrived, ${missing} did not; the next sync does the rest`,
    };
  }
  if (missing === 0) {
    if (r.attempted === 0) return { ok: true, text: '✔ nothing to send: the remote has it all' };
    const parts = [
      r.created > 0 ? `${r.created} created` : '',
      r.updated > 0 ? `${r.updated} updated` : '',
      r.deleted > 0 ? `${r.deleted} deleted` : '',
      r.skipped > 0 ? `${r.skipped} already there` : '',
    ].filter((part) => part !== '');
    return {
      ok: true,
      text: `✔ everything arrived: ${plural(r.attempted, 'item')} (${parts.join(', ')})`,
    };
  }
  const why = [
    r.errored - r.deadLettered > 0 ? `${r.errored - r.deadLettered} failed` : '',
    r.deadLettered > 0 ? `${r.deadLettered} dead-lettered` : '',
    r.timedOut + r.inProgress > 0 ? `${r.timedOut + r.inProgress} not sent in time` : '',
  ].filter((part) => part !== '');
  return {
    ok: false,
    text: `✘ ${missing} of ${plural(r.attempted, 'item')} did not arrive (${why.join(', ')})`,
  };
}

/** What is left in the outbox and how to send it, or null when it is empty. */
export function leftLines(command: string, left: LeftInOutbox | undefined): string[] {
  if (!left || (left.pending === 0 && left.deadLetters === 0)) return [];
  const lines: string[] = [];
  if (left.pending > 0) {
    lines.push(
      `  ${plural(left.pending, 'item')} pending in the outbox: run "upsync ${command}" again to send ${left.pending === 1 ? 'it' : 'them'}`,
    );
  }
  if (left.deadLetters > 0) {
    lines.push(
      `  ${plural(left.deadLetters, 'item')} in the dead-letter queue: "upsync dlq retry" sends ${left.deadLetters === 1 ? 'it' : 'them'} again once fixed`,
    );
  }
  return lines;
}

/** `--json`: the report alone on stdout; else a summary on stderr ending with the verdict. */
export function printReport(
  command: string,
  report: CliReport,
  options: PrintOptions | boolean,
  io: CliIo,
): void {
  const o: PrintOptions = typeof options === 'boolean' ? { json: options } : options;
  if (o.json) {
    io.stdout(`${JSON.stringify(report)}\n`);
    return;
  }
  const colors = picocolors.createColors(o.color ?? false);
  const name = `upsync ${command}`;
  const r = report;
  const out: string[] = [];
  if (!o.quiet) {
    out.push(
      `${name}: ${r.attempted} items: ${r.created} created, ${r.updated} updated, ${r.deleted} deleted, ` +
        `${r.skipped} skipped, ${r.errored} errored (${r.deadLettered} dead-lettered), ${r.timedOut} timed out; ` +
        `${r.coalesced} coalesced; ${r.requests.total} requests, ${r.retries} retries; ` +
        `${r.files.read} files read; ${formatDuration(r.durationMs)}`,
    );
  }
  const groups = groupErrors(r.errors);
  for (const group of groups.slice(0, MAX_CAUSES)) {
    out.push(
      `${name}: ${group.state}: ${group.cause} (${plural(group.keys.length, 'item')}): ${keyList(group.keys)}`,
    );
  }
  const listed = groups.slice(0, MAX_CAUSES).reduce((sum, group) => sum + group.keys.length, 0);
  const unlisted = r.errored + r.timedOut - listed;
  if (groups.length > 0 && unlisted > 0) {
    out.push(`${name}: ... and ${plural(unlisted, 'more item')} (see --json)`);
  }
  if (!r.checked && r.invariantError !== null) {
    out.push(`${name}: the accounting did not add up: ${r.invariantError}`);
  }
  const verdict = verdictLine(r);
  out.push(verdict.ok ? colors.green(verdict.text) : colors.red(verdict.text));
  if (!o.quiet) out.push(...leftLines(command, r.left));
  io.stderr(`${out.join('\n')}\n`);
}
