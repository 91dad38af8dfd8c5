// Baseline 3, what a user would hand-roll: p-queue with concurrency 10 and got with its
// default retry (2 retries of PUT on 408/413/429/500/502/503/504/521/522/524 and network
// errors, honouring Retry-After). Every file is PUT: no listing, no HEAD, no skipping.
import { readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import got from 'got';
import PQueue from 'p-queue';
import {
  ErrorSample,
  itemUrl,
  listFiles,
  tokenFromEnv,
  type BaselineJob,
  type BaselineResult,
} from './job.ts';

/** The concurrency the issue names for this baseline. */
export const HAND_ROLLED_CONCURRENCY = 10;

export async function handRolled(
  job: BaselineJob,
  token = tokenFromEnv(),
): Promise<BaselineResult> {
  const started = performance.now();
  const client = got.extend({
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
  });
  const queue = new PQueue({ concurrency: HAND_ROLLED_CONCURRENCY });
  const errors = new ErrorSample();
  let ok = 0;
  let failed = 0;
  for (const file of await listFiles(job.dir)) {
    void queue.add(async () => {
      try {
        await client.put(itemUrl(job, file.key), { body: await readFile(file.path) });
        ok++;
      } catch (error) {
        failed++;
        errors.add(error);
      }
    });
  }
  await queue.onIdle();
  return { ok, failed, timedMs: performance.now() - started, errors: errors.messages };
}
