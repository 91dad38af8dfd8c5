// Runs every scenario against its baselines in alternating rounds and gathers the samples,
// medians and target verdicts. Writing them out is report.ts's job.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { arrivedOf, runContender, type Contender, type ContenderRun } from './contenders.ts';
import { changeFiles, makeFiles, sliceToChange } from './fixtures.ts';
import type { BenchConfig, FilesSpec, GroupId, ScenarioId } from './scenarios.ts';
import {
  diffCounts,
  readRequestCounts,
  startServer,
  stopServer,
  totalOf,
  type RequestCounts,
  type RunningServer,
  type ServerSettings,
} from './server.ts';
import { median, medianIndex, rotate } from './stats.ts';

export interface Sample {
  readonly round: number;
  readonly exitCode: number | null;
  /** Spawn to exit of the contender's process. */
  readonly wallMs: number;
  /** The time throughput is computed from: wall time, except the ceiling's own fire phase. */
  readonly durationMs: number;
  readonly peakRssBytes: number | null;
  /** Counted by the server (/metrics), project routes only. */
  readonly requests: RequestCounts;
  /** Files the contender says arrived (upsync: created + updated + skipped). */
  readonly arrived: number | null;
  /** upsync's own --json report, or the baseline's result. */
  readonly report: Record<string, unknown> | null;
}

export interface Figures {
  readonly wallMs: number;
  readonly durationMs: number;
  readonly filesPerSec: number;
  readonly requestsPerSec: number;
  readonly okPutsPerSec: number;
  readonly peakRssBytes: number | null;
  readonly requests: RequestCounts;
  readonly total: number;
  readonly status429: number;
}

export interface ContenderResult {
  readonly contender: Contender;
  readonly samples: readonly Sample[];
  /** Medians over the samples; request counts from the sample with the median duration. */
  readonly median: Figures;
}

export type ChartMetric = 'wallSeconds' | 'peakRssMB' | 'okPutsPerSec';

export interface ScenarioResult {
  readonly id: ScenarioId;
  readonly title: string;
  readonly files: number;
  readonly bytesPerFile: number;
  readonly rounds: number;
  readonly chart: ChartMetric;
  readonly contenders: readonly ContenderResult[];
}

export interface TargetResult {
  readonly scenario: ScenarioId;
  readonly target: string;
  readonly measured: string;
  readonly pass: boolean;
}

export interface BenchOutcome {
  readonly scenarios: readonly ScenarioResult[];
  readonly targets: readonly TargetResult[];
}

type Log = (line: string) => void;

const TITLES: Record<ScenarioId, (files: number, bytes: number) => string> = {
  'initial-small': (n, b) => `Initial sync, ${fmtCount(n)} x ${fmtBytes(b)}`,
  'resync-unchanged': (n) => `Re-sync of ${fmtCount(n)} files, nothing changed`,
  'resync-changed': (n) => `Re-sync of ${fmtCount(n)} files, 1% changed`,
  'initial-large': (n, b) => `Initial sync, ${fmtCount(n)} x ${fmtBytes(b)}`,
  'rate-limited': (n, b) => `${fmtCount(n)} x ${fmtBytes(b)} to a server limited to`,
  'huge-file': (_n, b) => `One ${fmtBytes(b)} file`,
};

export function fmtCount(n: number): string {
  return n.toLocaleString('en-US');
}

export function fmtBytes(bytes: number): string {
  for (const [unit, size] of [
    ['GiB', 1024 ** 3],
    ['MiB', 1024 ** 2],
    ['KiB', 1024],
  ] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size} ${unit}`;
  }
  return `${bytes} B`;
}

/** Collects samples per scenario and contender as the rounds run. */
class Samples {
  readonly #byScenario = new Map<ScenarioId, Map<Contender, Sample[]>>();
  add(scenario: ScenarioId, contender: Contender, sample: Sample): void {
    let byContender = this.#byScenario.get(scenario);
    if (!byContender)
      this.#byScenario.set(scenario, (byContender = new Map<Contender, Sample[]>()));
    let list = byContender.get(contender);
    if (!list) byContender.set(contender, (list = []));
    list.push(sample);
  }
  get(scenario: ScenarioId): Map<Contender, Sample[]> {
    return this.#byScenario.get(scenario) ?? new Map<Contender, Sample[]>();
  }
}

function summarise(files: number, samples: readonly Sample[]): Figures {
  const durations = samples.map((s) => s.durationMs);
  const chosen = samples[medianIndex(durations)]!;
  const perSec = (count: (s: Sample) => number) =>
    median(samples.map((s) => (count(s) / s.durationMs) * 1000));
  const rss = samples.map((s) => s.peakRssBytes).filter((v): v is number => v !== null);
  return {
    wallMs: median(samples.map((s) => s.wallMs)),
    durationMs: median(durations),
    filesPerSec: perSec(() => files),
    requestsPerSec: perSec((s) => totalOf(s.requests)),
    okPutsPerSec: perSec((s) => totalOf(s.requests, 'PUT', (status) => status < 300)),
    peakRssBytes: rss.length ? median(rss) : null,
    requests: chosen.requests,
    total: totalOf(chosen.requests),
    status429: totalOf(chosen.requests, undefined, (status) => status === 429),
  };
}

function describeSample(contender: Contender, sample: Sample, files: number): string {
  const methods = Object.entries(sample.requests)
    .map(([method, byStatus]) => `${method} ${Object.values(byStatus).reduce((a, b) => a + b, 0)}`)
    .join(', ');
  const rate429 = totalOf(sample.requests, undefined, (s) => s === 429);
  const rss =
    sample.peakRssBytes === null ? '' : `  rss ${(sample.peakRssBytes / 1e6).toFixed(0)} MB`;
  return (
    `${contender.padEnd(11)} ${(sample.wallMs / 1000).toFixed(2).padStart(7)} s wall` +
    `  ${((files / sample.durationMs) * 1000).toFixed(0).padStart(6)} files/s` +
    `  [${methods || 'no requests'}]${rate429 ? `  429s ${rate429}` : ''}${rss}` +
    (sample.exitCode === 0 ? '' : `  EXIT ${sample.exitCode}`)
  );
}

async function measure(
  contender: Contender,
  server: RunningServer,
  dir: string,
  stateDir: string,
  round: number,
  cpuProfileDir?: string,
): Promise<{ sample: Sample; run: ContenderRun }> {
  const before = await readRequestCounts(server);
  const run = await runContender(contender, {
    server,
    dir,
    stateDir,
    ...(cpuProfileDir ? { cpuProfileDir } : {}),
  });
  const requests = diffCounts(before, await readRequestCounts(server));
  const timedMs = contender === 'ceiling' ? Number(run.report?.timedMs) : Number.NaN;
  const sample: Sample = {
    round,
    exitCode: run.exitCode,
    wallMs: run.wallMs,
    durationMs: Number.isFinite(timedMs) && timedMs > 0 ? timedMs : run.wallMs,
    peakRssBytes: run.peakRssBytes,
    requests,
    arrived: arrivedOf(contender, run),
    report: run.report,
  };
  return { sample, run };
}

function warnIfFailed(log: Log, contender: Contender, run: ContenderRun): void {
  if (run.exitCode !== 0) {
    log(
      `  ! ${contender} exited ${run.exitCode}: ${run.stderrTail.trim().split('\n').slice(-3).join(' | ')}`,
    );
  }
}

async function withTemp<T>(prefix: string, use: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  try {
    return await use(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function withServer<T>(
  settings: ServerSettings,
  use: (s: RunningServer) => Promise<T>,
): Promise<T> {
  const server = await startServer(settings);
  try {
    return await use(server);
  } finally {
    await stopServer(server);
  }
}

/** Initial sync, re-sync unchanged, re-sync with a share changed: one server per contender and round. */
async function runSmall(config: BenchConfig, samples: Samples, log: Log): Promise<void> {
  const spec = config.small;
  await withTemp('upsync-bench-small-', async (dir) => {
    await makeFiles(dir, spec.files, spec.bytes);
    let slot = 0;
    for (let round = 1; round <= spec.rounds; round++) {
      log(`-- small files, round ${round}/${spec.rounds}`);
      for (const contender of rotate(spec.contenders, round - 1)) {
        if (round > (spec.roundsOf?.[contender] ?? spec.rounds)) continue;
        await withTemp('upsync-bench-state-', (stateDir) =>
          withServer({}, async (server) => {
            const steps: [ScenarioId, () => Promise<void>][] = [
              ['initial-small', async () => {}],
              ['resync-unchanged', async () => {}],
              [
                'resync-changed',
                () =>
                  changeFiles(
                    dir,
                    sliceToChange(spec.files, spec.changedShare, slot++),
                    spec.bytes,
                  ),
              ],
            ];
            for (const [scenario, before] of steps) {
              await before();
              const { sample, run } = await measure(contender, server, dir, stateDir, round);
              warnIfFailed(log, contender, run);
              samples.add(scenario, contender, sample);
              log(`  ${scenario.padEnd(16)} ${describeSample(contender, sample, spec.files)}`);
            }
          }),
        );
      }
    }
    if (config.cpuProfileDir) {
      log(`-- profiling one upsync initial sync (not measured) into ${config.cpuProfileDir}`);
      await withTemp('upsync-bench-state-', (stateDir) =>
        withServer({}, async (server) => {
          const { sample } = await measure(
            'upsync',
            server,
            dir,
            stateDir,
            0,
            config.cpuProfileDir,
          );
          log(`  profiled         ${describeSample('upsync', sample, spec.files)}`);
        }),
      );
    }
  });
}

/** One initial sync per contender and round, each on a fresh server. */
async function runInitial(
  scenario: ScenarioId,
  spec: FilesSpec,
  settings: ServerSettings,
  samples: Samples,
  log: Log,
): Promise<void> {
  await withTemp(`upsync-bench-${scenario}-`, async (dir) => {
    await makeFiles(dir, spec.files, spec.bytes);
    for (let round = 1; round <= spec.rounds; round++) {
      log(`-- ${scenario}, round ${round}/${spec.rounds}`);
      for (const contender of rotate(spec.contenders, round - 1)) {
        if (round > (spec.roundsOf?.[contender] ?? spec.rounds)) continue;
        await withTemp('upsync-bench-state-', (stateDir) =>
          withServer(settings, async (server) => {
            const { sample, run } = await measure(contender, server, dir, stateDir, round);
            warnIfFailed(log, contender, run);
            samples.add(scenario, contender, sample);
            log(`  ${describeSample(contender, sample, spec.files)}`);
          }),
        );
      }
    }
  });
}

function scenarioResult(
  id: ScenarioId,
  spec: FilesSpec,
  chart: ChartMetric,
  samples: Samples,
  titleSuffix = '',
): ScenarioResult {
  const contenders: ContenderResult[] = [];
  for (const contender of spec.contenders) {
    const list = samples.get(id).get(contender);
    if (list?.length) {
      contenders.push({ contender, samples: list, median: summarise(spec.files, list) });
    }
  }
  return {
    id,
    title: TITLES[id](spec.files, spec.bytes) + titleSuffix,
    files: spec.files,
    bytesPerFile: spec.bytes,
    rounds: spec.rounds,
    chart,
    contenders,
  };
}

function figuresOf(result: ScenarioResult | undefined, contender: Contender): Figures | undefined {
  return result?.contenders.find((c) => c.contender === contender)?.median;
}

function allExitedZero(result: ScenarioResult | undefined, contender: Contender): boolean {
  const samples = result?.contenders.find((c) => c.contender === contender)?.samples ?? [];
  return samples.length > 0 && samples.every((s) => s.exitCode === 0);
}

const pct = (value: number): string => `${(value * 100).toFixed(1)}%`;

/** The issue's targets, each with the figure measured. */
export function checkTargets(
  config: BenchConfig,
  scenarios: readonly ScenarioResult[],
): TargetResult[] {
  const byId = new Map(scenarios.map((s) => [s.id, s]));
  const targets: TargetResult[] = [];
  const initial = byId.get('initial-small');
  const up = figuresOf(initial, 'upsync');
  if (initial && up) {
    const ceiling = figuresOf(initial, 'ceiling');
    if (ceiling) {
      const ratio = up.requestsPerSec / ceiling.requestsPerSec;
      targets.push({
        scenario: 'initial-small',
        target: ">= 60% of the ceiling's requests/s",
        measured: `${up.requestsPerSec.toFixed(0)} vs ${ceiling.requestsPerSec.toFixed(0)} req/s = ${pct(ratio)}`,
        pass: ratio >= 0.6,
      });
    }
    const naive = figuresOf(initial, 'naive');
    if (naive) {
      const ratio = up.filesPerSec / naive.filesPerSec;
      targets.push({
        scenario: 'initial-small',
        target: ">= 5x the naive client's files/s",
        measured: `${up.filesPerSec.toFixed(0)} vs ${naive.filesPerSec.toFixed(0)} files/s = ${ratio.toFixed(2)}x`,
        pass: ratio >= 5,
      });
    }
    const puts = totalOf(up.requests, 'PUT');
    const heads = totalOf(up.requests, 'HEAD');
    const gets = totalOf(up.requests, 'GET');
    const other = up.total - puts - heads - gets;
    targets.push({
      scenario: 'initial-small',
      target: 'requests = files + listing pages, no HEAD',
      measured: `${up.total} requests: PUT ${puts} for ${initial.files} files, GET ${gets}, HEAD ${heads}${other ? `, other ${other}` : ''}`,
      pass:
        puts === initial.files &&
        heads === 0 &&
        gets >= 1 &&
        other === 0 &&
        allExitedZero(initial, 'upsync'),
    });
  }
  const unchanged = figuresOf(byId.get('resync-unchanged'), 'upsync');
  if (unchanged) {
    const puts = totalOf(unchanged.requests, 'PUT');
    const heads = totalOf(unchanged.requests, 'HEAD');
    targets.push({
      scenario: 'resync-unchanged',
      target: 'zero PUT and zero HEAD',
      measured: `PUT ${puts}, HEAD ${heads} (GET ${totalOf(unchanged.requests, 'GET')})`,
      pass: puts === 0 && heads === 0,
    });
  }
  const changedResult = byId.get('resync-changed');
  const changed = figuresOf(changedResult, 'upsync');
  if (changed) {
    const expected = Math.max(1, Math.round(config.small.files * config.small.changedShare));
    const puts = totalOf(changed.requests, 'PUT');
    targets.push({
      scenario: 'resync-changed',
      target: `exactly ${expected} PUTs`,
      measured: `PUT ${puts}, HEAD ${totalOf(changed.requests, 'HEAD')}`,
      pass: puts === expected && allExitedZero(changedResult, 'upsync'),
    });
  }
  const limitedResult = byId.get('rate-limited');
  const limited = figuresOf(limitedResult, 'upsync');
  if (limited) {
    const { ratePerSec } = config.rateLimited;
    const hand = figuresOf(limitedResult, 'hand-rolled');
    const beside = hand
      ? `; hand-rolled ${hand.okPutsPerSec.toFixed(1)}/s, ${pct(hand.status429 / Math.max(1, hand.total))} 429`
      : '';
    targets.push({
      scenario: 'rate-limited',
      target: `>= 95% of ${ratePerSec} req/s as successful PUTs`,
      measured: `${limited.okPutsPerSec.toFixed(1)} PUT/s = ${pct(limited.okPutsPerSec / ratePerSec)}${beside}`,
      pass: limited.okPutsPerSec >= 0.95 * ratePerSec && allExitedZero(limitedResult, 'upsync'),
    });
    const share = limited.status429 / Math.max(1, limited.total);
    targets.push({
      scenario: 'rate-limited',
      target: '<= 2% of all requests answered 429',
      measured: `${limited.status429} of ${limited.total} = ${pct(share)}${beside}`,
      pass: share <= 0.02,
    });
  }
  const hugeResult = byId.get('huge-file');
  const huge = figuresOf(hugeResult, 'upsync');
  if (huge) {
    const rss = huge.peakRssBytes;
    targets.push({
      scenario: 'huge-file',
      target: 'peak client RSS < 200 MB',
      measured: rss === null ? 'not measured (no /proc)' : `${(rss / 1e6).toFixed(0)} MB`,
      pass: rss !== null && rss < 200e6 && allExitedZero(hugeResult, 'upsync'),
    });
  }
  return targets;
}

/**
 * Runs the groups the config asks for; `log` gets one line per measured run, `onGroup` the
 * outcome so far after each group (so a failure later keeps what was measured).
 */
export async function runBenchmark(
  config: BenchConfig,
  log: Log,
  onGroup: (partial: BenchOutcome) => Promise<void> = async () => {},
): Promise<BenchOutcome> {
  const samples = new Samples();
  const wants = (group: GroupId) => config.only === undefined || config.only.has(group);
  const scenarios: ScenarioResult[] = [];
  if (wants('small')) {
    await runSmall(config, samples, log);
    scenarios.push(
      scenarioResult('initial-small', config.small, 'wallSeconds', samples),
      scenarioResult('resync-unchanged', config.small, 'wallSeconds', samples),
      scenarioResult('resync-changed', config.small, 'wallSeconds', samples),
    );
    await onGroup({ scenarios, targets: checkTargets(config, scenarios) });
  }
  if (wants('large')) {
    await runInitial('initial-large', config.large, {}, samples, log);
    scenarios.push(scenarioResult('initial-large', config.large, 'wallSeconds', samples));
    await onGroup({ scenarios, targets: checkTargets(config, scenarios) });
  }
  if (wants('rate-limited')) {
    const { ratePerSec, burst } = config.rateLimited;
    await runInitial(
      'rate-limited',
      config.rateLimited,
      { rateLimit: `${ratePerSec}/${burst}` },
      samples,
      log,
    );
    scenarios.push(
      scenarioResult(
        'rate-limited',
        config.rateLimited,
        'okPutsPerSec',
        samples,
        ` ${ratePerSec} req/s (burst ${burst})`,
      ),
    );
    await onGroup({ scenarios, targets: checkTargets(config, scenarios) });
  }
  if (wants('huge')) {
    const maxBody = `${Math.ceil((config.huge.bytes * 2) / 1024 ** 2)}MiB`;
    await runInitial('huge-file', config.huge, { maxBody }, samples, log);
    scenarios.push(scenarioResult('huge-file', config.huge, 'peakRssMB', samples));
  }
  return { scenarios, targets: checkTargets(config, scenarios) };
}
