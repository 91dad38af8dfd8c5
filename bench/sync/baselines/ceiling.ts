// Baseline 1, the ceiling: the requests the job needs, fired as fast as the server takes them.
// Everything a client must work out first (reading the files, their SHA-256) is done before
// the clock starts; then one listing (all pages) and a PUT of each file the listing lacks,
// with the same headers the upsync remote sends, through an undici Pool of `concurrency`
// connections kept busy by as many loops.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import {
  ErrorSample,
  itemUrl,
  listFiles,
  tokenFromEnv,
  type BaselineJob,
  type BaselineResult,
} from './job.ts';

/** Files above this are streamed from disk rather than held in memory. */
const STREAM_ABOVE_BYTES = 16 * 1024 * 1024;

interface Prepared {
  readonly key: string;
  readonly path: string;
  readonly size: number;
  readonly sha256: Buffer;
  /** The body, unless the file is streamed. */
  readonly body: Buffer | undefined;
}

async function prepare(path: string, key: string): Promise<Prepared> {
  const { size } = await stat(path);
  if (size > STREAM_ABOVE_BYTES) {
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
    return { key, path, size, sha256: hash.digest(), body: undefined };
  }
  const body = await readFile(path);
  return { key, path, size, sha256: createHash('sha256').update(body).digest(), body };
}

async function listRemote(
  pool: Pool,
  job: BaselineJob,
  authorization: string,
): Promise<Map<string, string>> {
  const remote = new Map<string, string>();
  let after: string | null = null;
  do {
    const query = new URLSearchParams({ limit: '1000', ...(after === null ? {} : { after }) });
    const response = await pool.request({
      method: 'GET',
      path: `/v1/projects/${encodeURIComponent(job.project)}/items?${query.toString()}`,
      headers: { authorization, accept: 'application/json' },
    });
    if (response.statusCode !== 200) {
      await response.body.dump();
      throw new Error(`listing answered ${response.statusCode}`);
    }
    const page = (await response.body.json()) as {
      items: { key: string; sha256: string }[];
      next: string | null;
    };
    for (const item of page.items) remote.set(item.key, item.sha256);
    after = page.next;
  } while (after !== null);
  return remote;
}

export async function ceiling(job: BaselineJob, token = tokenFromEnv()): Promise<BaselineResult> {
  const authorization = `Bearer ${token}`;
  const prepared: Prepared[] = [];
  for (const file of await listFiles(job.dir)) prepared.push(await prepare(file.path, file.key));
  const origin = new URL(job.url).origin;
  const pool = new Pool(origin, { connections: job.concurrency, pipelining: 1 });
  const errors = new ErrorSample();
  let ok = 0;
  let failed = 0;
  const started = performance.now();
  try {
    const remote = await listRemote(pool, job, authorization);
    const todo = prepared.filter((file) => remote.get(file.key) !== file.sha256.toString('hex'));
    ok += prepared.length - todo.length;
    let next = 0;
    const loop = async (): Promise<void> => {
      while (next < todo.length) {
        const file = todo[next++]!;
        try {
          const response = await pool.request({
            method: 'PUT',
            path: new URL(itemUrl(job, file.key)).pathname,
            headers: {
              authorization,
              'content-type': 'application/octet-stream',
              'content-length': String(file.size),
              'content-digest': `sha-256=:${file.sha256.toString('base64')}:`,
              'idempotency-key': randomBytes(16).toString('hex'),
              accept: 'application/json',
            },
            body: file.body ?? createReadStream(file.path),
          });
          await response.body.json();
          if (response.statusCode !== 200 && response.statusCode !== 201) {
            throw new Error(`PUT ${response.statusCode}`);
          }
          ok++;
        } catch (error) {
          failed++;
          errors.add(error);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, job.concurrency) }, loop));
  } catch (error) {
    errors.add(error);
    failed = prepared.length - ok;
  } finally {
    await pool.close();
  }
  return { ok, failed, timedMs: performance.now() - started, errors: errors.messages };
}
