// Smoke test of the sync benchmark's harness: tiny counts, real servers and children on
// 127.0.0.1. It checks the outputs are well formed and the request counting is right; it
// asserts no timings.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runContender } from './contenders.ts';
import { makeFiles, sliceToChange } from './fixtures.ts';
import type { BenchReport } from './report.ts';
import { runAll } from './run-all.ts';
import { QUICK, type BenchConfig } from './scenarios.ts';
import {
  diffCounts,
  parseRequestCounts,
  readRequestCounts,
  startServer,
  stopServer,
  type RunningServer,
} from './server.ts';
import { median, medianIndex, rotate } from './stats.ts';

const KiB = 1024;

describe('pieces', () => {
  it('parses request counts from /metrics, project routes only', () => {
    const text = [
      '# TYPE upsync_requests_total counter',
      'upsync_requests_total{route="/v1/projects/:project/items/*",method="PUT",status="201"} 7',
      'upsync_requests_total{route="/v1/projects/:project/items/*",method="PUT",status="429"} 2',
      'upsync_requests_total{route="/v1/projects/:project/items",method="GET",status="200"} 1',
      'upsync_requests_total{route="/metrics",method="GET",status="200"} 5',
    ].join('\n');
    expect(parseRequestCounts(text)).toEqual({ PUT: { '201': 7, '429': 2 }, GET: { '200': 1 } });
    expect(diffCounts({ PUT: { '201': 3 } }, { PUT: { '201': 7, '429': 2 } })).toEqual({
      PUT: { '201': 4, '429': 2 },
    });
  });

  it('takes medians, rotates the order, and gives each slot its own changed files', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(medianIndex([30, 10, 20])).toBe(2);
    expect(rotate(['a', 'b', 'c'], 1)).toEqual(['b', 'c', 'a']);
    expect(sliceToChange(200, 0.01, 0)).toEqual([0, 1]);
    expect(sliceToChange(200, 0.01, 1)).toEqual([2, 3]);
  });
});

describe('request counting against a real server', () => {
  let server: RunningServer;
  let dir: string;
  let stateDir: string;
  const files = 12;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bench-test-files-'));
    stateDir = await mkdtemp(join(tmpdir(), 'bench-test-state-'));
    await makeFiles(dir, files, KiB);
    server = await startServer();
  });
  afterAll(async () => {
    await stopServer(server);
    await rm(dir, { recursive: true, force: true });
    await rm(stateDir, { recursive: true, force: true });
  });

  async function counted(contender: 'naive' | 'upsync' | 'hand-rolled' | 'ceiling') {
    const before = await readRequestCounts(server);
    const run = await runContender(contender, { server, dir, stateDir });
    expect(run.exitCode, run.stderrTail).toBe(0);
    return { run, requests: diffCounts(before, await readRequestCounts(server)) };
  }

  it('the naive client makes exactly a HEAD and a PUT per new file, and only HEADs after', async () => {
    const first = await counted('naive');
    expect(first.requests).toEqual({ HEAD: { '404': files }, PUT: { '201': files } });
    expect(first.run.report).toMatchObject({ ok: files, failed: 0 });
    const again = await counted('naive');
    expect(again.requests).toEqual({ HEAD: { '200': files } });
  });

  it('upsync re-syncing an unchanged folder makes one listing and nothing else', async () => {
    await counted('upsync');
    const again = await counted('upsync');
    expect(again.requests).toEqual({ GET: { '200': 1 } });
    expect(again.run.peakRssBytes).toBeGreaterThan(0);
  });

  it('the hand-rolled client PUTs every file; the ceiling lists and PUTs nothing present', async () => {
    expect((await counted('hand-rolled')).requests).toEqual({ PUT: { '200': files } });
    expect((await counted('ceiling')).requests).toEqual({ GET: { '200': 1 } });
  });
});

describe('a whole run in miniature', () => {
  const tiny: BenchConfig = {
    ...QUICK,
    small: { ...QUICK.small, files: 12, bytes: KiB },
    large: { ...QUICK.large, files: 3, bytes: 64 * KiB },
    rateLimited: { ...QUICK.rateLimited, files: 12 },
    huge: { ...QUICK.huge, bytes: 2 * 1024 * KiB },
  };
  let outDir: string;
  let report: BenchReport;

  beforeAll(async () => {
    outDir = await mkdtemp(join(tmpdir(), 'bench-test-out-'));
    report = await runAll(tiny, outDir, () => {});
  }, 180_000);
  afterAll(() => rm(outDir, { recursive: true, force: true }));

  it('writes latest.json with the machine, every scenario and every target', async () => {
    const json = JSON.parse(await readFile(join(outDir, 'latest.json'), 'utf8')) as BenchReport;
    const { machine } = json;
    expect(typeof machine.cpuModel).toBe('string');
    expect(machine.cores).toBeGreaterThan(0);
    expect(machine.memoryBytes).toBeGreaterThan(0);
    expect(machine.os).not.toBe('');
    expect(machine.node).toMatch(/^v\d+/);
    expect(Number.isNaN(Date.parse(machine.date))).toBe(false);
    expect(json.scenarios.map((s) => s.id)).toEqual([
      'initial-small',
      'resync-unchanged',
      'resync-changed',
      'initial-large',
      'rate-limited',
      'huge-file',
    ]);
    for (const scenario of json.scenarios) {
      for (const contender of scenario.contenders) {
        expect(contender.samples).toHaveLength(1);
        expect(contender.median.wallMs).toBeGreaterThan(0);
        expect(contender.median.total).toBeGreaterThan(0);
      }
    }
    expect(json.targets.map((t) => t.scenario)).toEqual([
      'initial-small',
      'initial-small',
      'initial-small',
      'resync-unchanged',
      'resync-changed',
      'rate-limited',
      'rate-limited',
      'huge-file',
    ]);
  });

  it('counts what the targets mean on known cases', () => {
    const byId = new Map(report.scenarios.map((s) => [s.id, s]));
    const figures = (id: string, contender: string) =>
      byId.get(id as never)!.contenders.find((c) => c.contender === contender)!.median;
    expect(figures('initial-small', 'naive').requests).toEqual({
      HEAD: { '404': 12 },
      PUT: { '201': 12 },
    });
    expect(figures('initial-small', 'upsync').requests).toEqual({
      GET: { '200': 1 },
      PUT: { '201': 12 },
    });
    expect(figures('resync-unchanged', 'upsync').requests).toEqual({ GET: { '200': 1 } });
    // 1% of 12 files rounds to one changed file.
    expect(figures('resync-changed', 'upsync').requests).toEqual({
      GET: { '200': 1 },
      PUT: { '200': 1 },
    });
    const targets = report.targets;
    expect(targets.find((t) => t.target === 'zero PUT and zero HEAD')?.pass).toBe(true);
    expect(targets.find((t) => t.target === 'exactly 1 PUTs')?.pass).toBe(true);
  });

  it('writes a Markdown table with a row per scenario and contender, and the targets', async () => {
    const md = await readFile(join(outDir, 'latest.md'), 'utf8');
    const rows = md
      .split('\n')
      .filter((line) => line.startsWith('| ') && !line.startsWith('| ---'));
    const contenderRows = report.scenarios.reduce((sum, s) => sum + s.contenders.length, 0);
    // Two header rows, one row per scenario and contender, one per target.
    expect(rows).toHaveLength(2 + contenderRows + report.targets.length);
    expect(md).toContain('| Initial sync, 12 x 1 KiB | naive |');
    expect(md).toMatch(
      /\| resync-unchanged \| zero PUT and zero HEAD \| PUT 0, HEAD 0 .*\| pass \|/,
    );
  });

  it('writes an SVG with one bar per contender in each scenario', async () => {
    const svg = await readFile(join(outDir, 'latest.svg'), 'utf8');
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    // XML-ish: every element opened is closed or self-closed.
    const opened = svg.match(/<(?!\/)[a-z]+[^>]*[^/]>/g)?.length ?? 0;
    const closed = svg.match(/<\/[a-z]+>/g)?.length ?? 0;
    expect(opened).toBe(closed);
    for (const scenario of report.scenarios) {
      const bars = [
        ...svg.matchAll(
          new RegExp(`class="bar" data-scenario="${scenario.id}" data-contender="([a-z-]+)"`, 'g'),
        ),
      ];
      expect(bars.map((match) => match[1])).toEqual(scenario.contenders.map((c) => c.contender));
    }
  });
});
