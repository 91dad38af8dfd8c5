// Shared by the micro benchmarks: quick mode, medians, heap sampling, the results file and tables.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';

/** Where the results go unless a caller (the smoke test) points elsewhere. */
export const DEFAULT_RESULTS_PATH = join(
  new URL('../..', import.meta.url).pathname,
  'bench/results/micro.json',
);

/** BENCH_QUICK=1: small counts, for the smoke test and a quick look. */
export function isQuick(): boolean {
  return process.env.BENCH_QUICK === '1';
}

export function median(list: readonly number[]): number {
  if (list.length === 0) return NaN;
  const sorted = [...list].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Rounds to `digits` decimals, for readable JSON. */
export function round(value: number, digits = 3): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

const gc = (globalThis as { gc?: () => void }).gc;

/** Whether `node --expose-gc` gave us a gc(): without it, heap figures include garbage. */
export const canForceGc = typeof gc === 'function';

/** Forces a full collection where we can (twice: the first may only promote). */
export function forceGc(): void {
  gc?.();
  gc?.();
}

export function heapUsed(): number {
  return process.memoryUsage().heapUsed;
}

/** The highest heapUsed seen among calls to sample(). */
export class HeapPeak {
  #peak: number;

  constructor() {
    this.#peak = heapUsed();
  }

  sample(): void {
    const now = heapUsed();
    if (now > this.#peak) this.#peak = now;
  }

  get peak(): number {
    return this.#peak;
  }
}

export const MB = 1024 * 1024;

/** One scenario's entry in micro.json. */
export interface ScenarioResult {
  readonly scenario: string;
  readonly date: string;
  readonly quick: boolean;
}

/** Merges `result` into the results file by scenario name, keeping the other scenarios. */
export function writeResult(result: ScenarioResult, path = DEFAULT_RESULTS_PATH): void {
  let file: { node?: string; cpus?: number; scenarios: Record<string, unknown> } = {
    scenarios: {},
  };
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as typeof file;
    if (parsed && typeof parsed.scenarios === 'object' && parsed.scenarios !== null) file = parsed;
  } catch {
    // No file yet, or not ours: start afresh.
  }
  file.node = process.version;
  file.cpus = cpus().length;
  file.scenarios[result.scenario] = result;
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(file, null, 2)}\n`);
}

/** Prints rows as an aligned table (numbers right-aligned). */
export function printTable(
  rows: readonly Record<string, string | number>[],
  log: (line: string) => void = console.log,
): void {
  const first = rows[0];
  if (!first) return;
  const columns = Object.keys(first);
  const cell = (value: string | number | undefined): string =>
    value === undefined ? '' : typeof value === 'number' ? String(value) : value;
  const widths = columns.map((column) =>
    Math.max(column.length, ...rows.map((row) => cell(row[column]).length)),
  );
  const line = (values: (string | number | undefined)[]): string =>
    values
      .map((value, i) =>
        typeof value === 'number'
          ? cell(value).padStart(widths[i]!)
          : cell(value).padEnd(widths[i]!),
      )
      .join('  ')
      .trimEnd();
  log(line(columns));
  log(widths.map((width) => '-'.repeat(width)).join('  '));
  for (const row of rows) log(line(columns.map((column) => row[column])));
}

/** True when this module is the script node was started with. */
export function isMain(moduleUrl: string): boolean {
  const entry = process.argv[1];
  return entry !== undefined && new URL(moduleUrl).pathname === entry;
}

/** Options every scenario takes. */
export interface RunOptions {
  /** Small counts (default: BENCH_QUICK=1). */
  quick?: boolean;
  /** Where to merge the result; default bench/results/micro.json. */
  resultsPath?: string;
  /** Progress and the table; default console.log. */
  log?: (line: string) => void;
}
