// Baseline 2, the naive client: for each file, one at a time, HEAD it and PUT it unless the
// server already has the same bytes (its ETag is the body's SHA-256). Global fetch, which
// keeps connections alive. No retries, no pacing: what a first script looks like.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import {
  ErrorSample,
  itemUrl,
  listFiles,
  tokenFromEnv,
  type BaselineJob,
  type BaselineResult,
} from './job.ts';

export async function naive(job: BaselineJob, token = tokenFromEnv()): Promise<BaselineResult> {
  const started = performance.now();
  const authorization = `Bearer ${token}`;
  const errors = new ErrorSample();
  let ok = 0;
  let failed = 0;
  for (const file of await listFiles(job.dir)) {
    try {
      const body = await readFile(file.path);
      const url = itemUrl(job, file.key);
      const head = await fetch(url, { method: 'HEAD', headers: { authorization } });
      const etag = `"${createHash('sha256').update(body).digest('hex')}"`;
      if (head.status === 200 && head.headers.get('etag') === etag) {
        ok++;
        continue;
      }
      if (head.status !== 404 && head.status !== 200) throw new Error(`HEAD ${head.status}`);
      const put = await fetch(url, {
        method: 'PUT',
        headers: { authorization, 'content-type': 'application/octet-stream' },
        body,
      });
      await put.arrayBuffer();
      if (put.status !== 200 && put.status !== 201) throw new Error(`PUT ${put.status}`);
      ok++;
    } catch (error) {
      failed++;
      errors.add(error);
    }
  }
  return { ok, failed, timedMs: performance.now() - started, errors: errors.messages };
}
