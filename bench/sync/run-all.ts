// `npm run bench`: every sync scenario beside its baselines, in one run. Writes
// bench/results/latest.json, latest.md and latest.svg (or into BENCH_OUT).
// BENCH_QUICK=1 for tiny counts; BENCH_ONLY=small,large,rate-limited,huge for some groups;
// BENCH_CPU_PROF=DIR for one extra, unmeasured, profiled upsync run of the 10,000-file sync.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { runBenchmark, type BenchOutcome } from './harness.ts';
import { describeMachine } from './machine.ts';
import { buildReport, toMarkdown, toSvg, type BenchReport } from './report.ts';
import { configFromEnv, type BenchConfig } from './scenarios.ts';
import { REPO_ROOT } from './server.ts';

export async function runAll(
  config: BenchConfig,
  outDir: string,
  log: (line: string) => void,
): Promise<BenchReport> {
  const machine = describeMachine();
  const started = performance.now();
  const write = async (outcome: BenchOutcome): Promise<BenchReport> => {
    const report = buildReport(config, outcome, machine, (performance.now() - started) / 1000);
    await mkdir(outDir, { recursive: true });
    await writeFile(join(outDir, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
    await writeFile(join(outDir, 'latest.md'), toMarkdown(report));
    await writeFile(join(outDir, 'latest.svg'), toSvg(report));
    return report;
  };
  // Written after each group too: a failure later keeps what was measured.
  return write(await runBenchmark(config, log, async (partial) => void (await write(partial))));
}

if (import.meta.filename === process.argv[1]) {
  const config = configFromEnv(process.env);
  const outDir = process.env.BENCH_OUT ?? join(REPO_ROOT, 'bench/results');
  const report = await runAll(config, outDir, (line) => console.log(line));
  console.log('');
  for (const target of report.targets) {
    console.log(
      `${target.pass ? 'pass' : 'FAIL'}  ${target.scenario}: ${target.target}: ${target.measured}`,
    );
  }
  console.log(`\nwrote latest.json, latest.md, latest.svg to ${outDir} (${report.totalSeconds} s)`);
}
