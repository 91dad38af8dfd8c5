// The reference server for one round: `upsync serve` in its own child process, a fresh data
// folder, durable storage, request log off (counts come from /metrics).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const REPO_ROOT = new URL('../../', import.meta.url).pathname;
export const UPSYNC_BIN = join(REPO_ROOT, 'packages/node/src/bin/upsync.ts');
/**
 * The Node flags on the bin's `#!/usr/bin/env -S node ...` line: what an
 * installed `upsync` runs with, so the benchmark starts it the same way.
 */
export const UPSYNC_NODE_FLAGS: readonly string[] =
  /^#!\S*env -S node(.*)$/m
    .exec(readFileSync(UPSYNC_BIN, 'utf8').split('\n', 1)[0] ?? '')?.[1]
    ?.trim()
    .split(/\s+/)
    .filter((flag) => flag !== '') ?? [];
export const BENCH_TOKEN = 'bench-sync-token-0123456789abcdef';
export const BENCH_PROJECT = 'bench';

export interface ServerSettings {
  /** `--fault-rate-limit R/B`, e.g. '50/10'. */
  readonly rateLimit?: string;
  /** `--max-body`, e.g. '2GiB'. */
  readonly maxBody?: string;
}

export interface RunningServer {
  readonly url: string;
  readonly child: ChildProcess;
  readonly dir: string;
}

export async function startServer(settings: ServerSettings = {}): Promise<RunningServer> {
  const dir = await mkdtemp(join(tmpdir(), 'upsync-bench-server-'));
  await writeFile(join(dir, 'tokens.json'), JSON.stringify({ [BENCH_TOKEN]: [BENCH_PROJECT] }));
  const args = [
    UPSYNC_BIN,
    'serve',
    '--port',
    '0',
    '--data',
    join(dir, 'data'),
    '--tokens',
    join(dir, 'tokens.json'),
    '--log',
    'off',
    ...(settings.maxBody ? ['--max-body', settings.maxBody] : []),
    ...(settings.rateLimit
      ? ['--fault-rate-limit', settings.rateLimit, '--fault-retry-after', 'seconds']
      : []),
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let text = '';
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (part: string) => {
        text += part;
        const match = /listening on (http:\/\/\S+)/.exec(text);
        if (match) resolve(match[1]!);
      });
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`upsync serve exited with ${code}: ${text}`)));
    });
    return { url, child, dir };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

export async function stopServer(server: RunningServer): Promise<void> {
  if (server.child.exitCode === null && server.child.signalCode === null) {
    const exited = new Promise((resolve) => server.child.once('exit', resolve));
    server.child.kill('SIGTERM');
    await exited;
  }
  await rm(server.dir, { recursive: true, force: true });
}

/** Requests answered, by method, then by status code: `{ PUT: { '201': 200 } }`. */
export type RequestCounts = Record<string, Record<string, number>>;

/** Parses `upsync_requests_total` of the Prometheus text; project routes only (not /metrics). */
export function parseRequestCounts(text: string): RequestCounts {
  const counts: RequestCounts = {};
  const line =
    /^upsync_requests_total\{route="([^"]*)",method="([A-Z]+)",status="(\d+)"\} (\d+)$/gm;
  for (const match of text.matchAll(line)) {
    const [, route, method, status, value] = match;
    if (!route!.startsWith('/v1/projects/')) continue;
    const byStatus = (counts[method!] ??= {});
    byStatus[status!] = (byStatus[status!] ?? 0) + Number(value);
  }
  return counts;
}

export async function readRequestCounts(server: RunningServer): Promise<RequestCounts> {
  const response = await fetch(`${server.url}/metrics`);
  if (response.status !== 200) throw new Error(`/metrics answered ${response.status}`);
  return parseRequestCounts(await response.text());
}

/** after - before, dropping zeros. */
export function diffCounts(before: RequestCounts, after: RequestCounts): RequestCounts {
  const diff: RequestCounts = {};
  for (const [method, byStatus] of Object.entries(after)) {
    for (const [status, value] of Object.entries(byStatus)) {
      const delta = value - (before[method]?.[status] ?? 0);
      if (delta !== 0) (diff[method] ??= {})[status] = delta;
    }
  }
  return diff;
}

export function totalOf(
  counts: RequestCounts,
  method?: string,
  status?: (s: number) => boolean,
): number {
  let total = 0;
  for (const [m, byStatus] of Object.entries(counts)) {
    if (method !== undefined && m !== method) continue;
    for (const [s, value] of Object.entries(byStatus)) {
      if (status === undefined || status(Number(s))) total += value;
    }
  }
  return total;
}
