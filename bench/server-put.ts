// PUT throughput of the reference server (durable: WAL fdatasync'd before each answer, group
// commit) beside a bare node:http server that stores nothing, in one run.
// Rounds alternate which server goes first; the medians are compared.
// Run: npm run bench:server [-- --rounds 3 --seconds 5]
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import {
  BENCH_PROJECT,
  BENCH_TOKEN,
  startServer,
  stopServer,
  type RunningServer,
} from './sync/server.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '5' },
    connections: { type: 'string', default: '64' },
  },
});
const rounds = Number(values.rounds);
const seconds = Number(values.seconds);
const connections = Number(values.connections);
const sizes = [1024, 64 * 1024];
const root = new URL('..', import.meta.url).pathname;

interface Running {
  child: ChildProcess;
  url: string;
  /** The reference server's, from bench/sync/server.ts. */
  server?: RunningServer;
}

async function start(kind: 'bare' | 'upsync'): Promise<Running> {
  if (kind === 'upsync') {
    const server = await startServer();
    return { child: server.child, url: server.url, server };
  }
  const child = spawn(process.execPath, [join(root, 'bench/bare-server.ts')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let text = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (part: string) => {
      text += part;
      const match = /listening on (http:\/\/\S+)/.exec(text);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`bare server exited with ${code}: ${text}`)));
  });
  return { child, url };
}

async function stop(running: Running): Promise<void> {
  if (running.server) {
    await stopServer(running.server);
    return;
  }
  const exited = new Promise((resolve) => running.child.once('exit', resolve));
  running.child.kill('SIGTERM');
  await exited;
}

async function load(
  url: string,
  size: number,
): Promise<{ rps: number; errors: number; non2xx: number }> {
  // 1000 keys, each PUT a different body from the last one for that key: every request is a real write.
  const bodies = [Buffer.alloc(size, 97), Buffer.alloc(size, 98)];
  let counter = 0;
  const result = await autocannon({
    url,
    connections,
    duration: seconds,
    requests: [
      {
        method: 'PUT',
        headers: {
          authorization: `Bearer ${BENCH_TOKEN}`,
          'content-type': 'application/octet-stream',
        },
        setupRequest: (request) => {
          const i = counter++;
          return {
            ...request,
            path: `/v1/projects/${BENCH_PROJECT}/items/k/${i % 1000}`,
            body: bodies[Math.floor(i / 1000) % 2]!,
          };
        },
      },
    ],
  });
  return { rps: result.requests.average, errors: result.errors, non2xx: result.non2xx };
}

const median = (list: number[]): number => {
  const sorted = [...list].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

const samples: Record<string, number[]> = {};
for (let round = 1; round <= rounds; round += 1) {
  const order: ('bare' | 'upsync')[] = round % 2 ? ['bare', 'upsync'] : ['upsync', 'bare'];
  for (const size of sizes) {
    for (const kind of order) {
      const running = await start(kind);
      try {
        const { rps, errors, non2xx } = await load(running.url, size);
        if (errors > 0 || non2xx > 0) {
          throw new Error(`${kind} ${size} B: ${errors} errors, ${non2xx} non-2xx answers`);
        }
        (samples[`${kind}:${size}`] ??= []).push(rps);
        console.log(
          `round ${round} ${kind.padEnd(6)} ${String(size).padStart(6)} B  ${rps.toFixed(0)} PUT/s`,
        );
      } finally {
        await stop(running);
      }
    }
  }
}

const results = sizes.map((size) => {
  const bare = median(samples[`bare:${size}`]!);
  const upsync = median(samples[`upsync:${size}`]!);
  return {
    bodyBytes: size,
    bareRps: Math.round(bare),
    upsyncRps: Math.round(upsync),
    ratio: Math.round((upsync / bare) * 1000) / 1000,
    bareSamples: samples[`bare:${size}`]!.map(Math.round),
    upsyncSamples: samples[`upsync:${size}`]!.map(Math.round),
  };
});
console.log('');
for (const r of results) {
  console.log(
    `${String(r.bodyBytes).padStart(6)} B: upsync ${r.upsyncRps} PUT/s, bare ${r.bareRps} PUT/s, ratio ${(r.ratio * 100).toFixed(1)}%`,
  );
}
const target = results.find((r) => r.bodyBytes === 1024)!;
console.log(`target (>= 50% of bare at 1 KiB): ${target.ratio >= 0.5 ? 'met' : 'NOT met'}`);
mkdirSync(join(root, 'bench/results'), { recursive: true });
writeFileSync(
  join(root, 'bench/results/server-put.json'),
  `${JSON.stringify(
    {
      date: new Date().toISOString(),
      node: process.version,
      cpus: cpus().length,
      connections,
      secondsPerRun: seconds,
      rounds,
      durability:
        'SQLite WAL, group commit; each batch answered after an fdatasync of the WAL (libuv pool); checkpoints at synchronous=FULL; bodies <= 128 KiB inline',
      results,
    },
    null,
    2,
  )}\n`,
);
