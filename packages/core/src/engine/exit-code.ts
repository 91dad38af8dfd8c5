import type { StatsSnapshot } from '../stats/stats.ts';

/**
 * The exit code of a command (shared/DESIGN.md "Exit codes"): 0 when every
 * version it took up arrived or was skipped, 1 when something did not arrive
 * (errored or timed out: it is in the outbox or the dead-letter queue). Code 2
 * (usage, configuration, local state) comes from the CLI, before any report.
 */
export function exitCode(
  report: Pick<StatsSnapshot, 'errored' | 'timedOut' | 'inProgress'>,
): 0 | 1 {
  return report.errored === 0 && report.timedOut === 0 && report.inProgress === 0 ? 0 : 1;
}
