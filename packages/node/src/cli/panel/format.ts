// Short, human units for a panel line: what fits beside a progress bar, not
// what round-trips (formatDuration of @upsync/core is exact, and long).

/** `850ms`, `4.2s`, `37s`, `2m05s`, `1h07m`. */
export function shortDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)}s`;
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m${String(seconds % 60).padStart(2, '0')}s`;
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`;
}

/** `512 B`, `3.4 kB`, `12 MB` (powers of 1000, like the network tools people compare with). */
export function shortBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

/** A per-second rate: one decimal below 10, whole above. */
export function shortRate(perSec: number): string {
  if (!Number.isFinite(perSec) || perSec <= 0) return '0';
  return perSec < 10 ? perSec.toFixed(1) : String(Math.round(perSec));
}
