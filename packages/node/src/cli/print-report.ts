import { formatDuration, type EngineReport } from '@upsync/core';
import type { DigestCacheStats } from '../source/digest-cache.ts';
import type { CliIo } from './main.ts';

/** The JSON report: the engine's, with the folder source's reads beside it. */
export interface CliReport extends EngineReport {
  readonly durationMs: number;
  readonly files: { readonly read: number; readonly bytesRead: number; readonly cached: number };
}

/** Errors listed one per line in the plain summary; the JSON report has them all. */
const MAX_ERROR_LINES = 20;

export function cliReport(report: EngineReport, files: DigestCacheStats): CliReport {
  return {
    ...report,
    durationMs: report.elapsedMs,
    files: { read: files.filesRead, bytesRead: files.bytesRead, cached: files.hits },
  };
}

/** `--json`: the report alone on stdout; else a plain summary on stderr. */
export function printReport(command: string, report: CliReport, json: boolean, io: CliIo): void {
  if (json) {
    io.stdout(`${JSON.stringify(report)}\n`);
    return;
  }
  const name = `upsync ${command}`;
  const r = report;
  io.stderr(
    `${name}: ${r.attempted} items: ${r.created} created, ${r.updated} updated, ${r.deleted} deleted, ` +
      `${r.skipped} skipped, ${r.errored} errored (${r.deadLettered} dead-lettered), ${r.timedOut} timed out; ` +
      `${r.coalesced} coalesced; ${r.requests.total} requests, ${r.retries} retries; ` +
      `${r.files.read} files read; ${formatDuration(r.durationMs)}\n`,
  );
  for (const error of r.errors.slice(0, MAX_ERROR_LINES)) {
    const where = error.deadLettered
      ? 'dead-lettered'
      : error.outcome === 'timedOut'
        ? 'pending'
        : 'failed';
    io.stderr(`${name}: ${where}: ${error.key}: ${error.message}\n`);
  }
  if (r.errors.length > MAX_ERROR_LINES) {
    io.stderr(`${name}: ... and ${r.errors.length - MAX_ERROR_LINES} more (see --json)\n`);
  }
  if (!r.checked && r.invariantError !== null) {
    io.stderr(`${name}: the accounting did not add up: ${r.invariantError}\n`);
  }
}
