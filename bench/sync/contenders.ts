// Runs one contender as a child process and measures it from outside: wall time from spawn
// to exit, and peak RSS (VmHWM of /proc/<pid>/status, sampled while it runs, since the
// kernel drops it when the process exits).
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { BaselineResult } from './baselines/job.ts';
import {
  BENCH_PROJECT,
  BENCH_TOKEN,
  REPO_ROOT,
  UPSYNC_BIN,
  UPSYNC_NODE_FLAGS,
  type RunningServer,
} from './server.ts';

export const CONTENDERS = ['upsync', 'ceiling', 'naive', 'hand-rolled'] as const;
export type Contender = (typeof CONTENDERS)[number];

/** upsync's default --concurrency; the ceiling uses the same. */
export const UPSYNC_CONCURRENCY = 16;

export interface ContenderRun {
  readonly exitCode: number | null;
  readonly wallMs: number;
  /** Peak resident set of the child, bytes; null where /proc is not there. */
  readonly peakRssBytes: number | null;
  /** upsync: the CLI's --json report; baselines: their BaselineResult. */
  readonly report: Record<string, unknown> | null;
  readonly stderrTail: string;
}

export interface ContenderJob {
  readonly server: RunningServer;
  readonly dir: string;
  /** upsync's state folder (fresh for an initial sync, kept for a re-sync). */
  readonly stateDir: string;
  /** When set, the upsync child writes a V8 CPU profile there. */
  readonly cpuProfileDir?: string;
}

const BASELINE_MAIN = join(REPO_ROOT, 'bench/sync/baselines/main.ts');
const SAMPLE_EVERY_MS = 20;

async function peakRss(pid: number): Promise<number | null> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(status);
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

function argsFor(contender: Contender, job: ContenderJob): string[] {
  if (contender === 'upsync') {
    return [
      ...UPSYNC_NODE_FLAGS,
      ...(job.cpuProfileDir ? ['--cpu-prof', '--cpu-prof-dir', job.cpuProfileDir] : []),
      UPSYNC_BIN,
      'sync',
      job.dir,
      '--remote',
      job.server.url,
      '--project',
      BENCH_PROJECT,
      '--state',
      job.stateDir,
      '--json',
    ];
  }
  const baselineJob = {
    url: job.server.url,
    project: BENCH_PROJECT,
    dir: job.dir,
    concurrency: UPSYNC_CONCURRENCY,
  };
  return [BASELINE_MAIN, contender, JSON.stringify(baselineJob)];
}

export async function runContender(contender: Contender, job: ContenderJob): Promise<ContenderRun> {
  const started = performance.now();
  const child = spawn(process.execPath, argsFor(contender, job), {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, UPSYNC_TOKEN: BENCH_TOKEN },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (part: string) => (stdout += part));
  child.stderr.setEncoding('utf8').on('data', (part: string) => {
    stderr = (stderr + part).slice(-4000);
  });
  let peak: number | null = null;
  const sampler = setInterval(() => {
    if (child.pid === undefined) return;
    void peakRss(child.pid).then((value) => {
      if (value !== null) peak = Math.max(peak ?? 0, value);
    });
  }, SAMPLE_EVERY_MS);
  const exitCode = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve(code));
  }).finally(() => clearInterval(sampler));
  const wallMs = performance.now() - started;
  let report: Record<string, unknown> | null = null;
  const lastLine = stdout.trim().split('\n').at(-1);
  if (lastLine) {
    try {
      report = JSON.parse(lastLine) as Record<string, unknown>;
    } catch {
      report = null;
    }
  }
  return { exitCode, wallMs, peakRssBytes: peak, report, stderrTail: stderr.slice(-1000) };
}

/** How many files arrived, as the contender itself reports it. */
export function arrivedOf(contender: Contender, run: ContenderRun): number | null {
  const report = run.report;
  if (!report) return null;
  if (contender === 'upsync') {
    const r = report as { created?: number; updated?: number; skipped?: number };
    return (r.created ?? 0) + (r.updated ?? 0) + (r.skipped ?? 0);
  }
  return (report as unknown as BaselineResult).ok;
}
