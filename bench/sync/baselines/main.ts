// Runs one baseline as its own process, as the upsync CLI runs: the driver spawns it, times
// it and samples its memory. Usage: node main.ts ceiling|naive|hand-rolled '<job JSON>'
// (token in UPSYNC_TOKEN). Prints the BaselineResult as one JSON line on stdout.
import { ceiling } from './ceiling.ts';
import { handRolled } from './hand-rolled.ts';
import type { BaselineJob, BaselineResult } from './job.ts';
import { naive } from './naive.ts';

const baselines = {
  ceiling,
  naive,
  'hand-rolled': handRolled,
} as const satisfies Record<string, (job: BaselineJob) => Promise<BaselineResult>>;

type BaselineName = keyof typeof baselines;

const [name, jobText] = process.argv.slice(2);
if (name === undefined || !(name in baselines) || jobText === undefined) {
  process.stderr.write(`usage: main.ts ${Object.keys(baselines).join('|')} '<job JSON>'\n`);
  process.exitCode = 2;
} else {
  const result = await baselines[name as BaselineName](JSON.parse(jobText) as BaselineJob);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
