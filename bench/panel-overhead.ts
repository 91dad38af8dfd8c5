// What the live panel costs a sync: the same `upsync sync` of a few thousand
// small files against the reference server (a child process), with the panel
// drawn into a sink that counts bytes as a terminal would get them, and without
// it (plain mode, lines discarded). Rounds alternate which goes first; the
// medians are compared.
// Run: npx node bench/panel-overhead.ts [-- --files 3000 --rounds 3]
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { sync } from '../packages/node/src/cli/sync.ts';
import type { CliIo } from '../packages/node/src/cli/main.ts';
import type { Terminal } from '../packages/node/src/cli/panel/terminal.ts';
import { BENCH_PROJECT, BENCH_TOKEN, startServer, stopServer } from './sync/server.ts';

const { values } = parseArgs({
  options: {
    files: { type: 'string', default: '3000' },
    rounds: { type: 'string', default: '3' },
  },
});
const files = Number(values.files);
const rounds = Number(values.rounds);
/** A folder of `files` small files under a prefix of its own, so every round sends them all. */
function makeFolder(base: string, prefix: string): string {
  const dir = join(base, prefix);
  for (let i = 0; i < files; i++) {
    const sub = join(dir, `d${i % 20}`);
    mkdirSync(sub, { recursive: true });
    writeFileSync(join(sub, `f-${i}.json`), `{"n":${i},"pad":"${'x'.repeat(i % 200)}"}\n`);
  }
  return dir;
}

/** A terminal that draws nowhere: it counts the bytes and frames it was given. */
function sinkTerminal(): { terminal: Terminal; bytes: () => number; writes: () => number } {
  let bytes = 0;
  let writes = 0;
  const stream = {
    isTTY: true,
    columns: 100,
    rows: 40,
    write(text: string): boolean {
      bytes += Buffer.byteLength(text);
      writes++;
      return true;
    },
  };
  return {
    terminal: { stream, input: null, color: true },
    bytes: () => bytes,
    writes: () => writes,
  };
}

const discard: CliIo = { stdout: () => {}, stderr: () => {} };

async function once(
  url: string,
  dir: string,
  panel: boolean,
): Promise<{ ms: number; bytes: number; writes: number }> {
  const sink = sinkTerminal();
  const args = [dir, '--remote', url, '--project', BENCH_PROJECT, '--concurrency', '16'];
  const started = performance.now();
  const code = await sync(args, discard, {
    env: { UPSYNC_TOKEN: BENCH_TOKEN },
    terminal: panel ? sink.terminal : null,
  });
  const ms = performance.now() - started;
  if (code !== 0) throw new Error(`sync exited with ${code}`);
  return { ms, bytes: sink.bytes(), writes: sink.writes() };
}

const median = (list: number[]): number => {
  const sorted = [...list].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

const work = mkdtempSync(join(tmpdir(), 'upsync-bench-panel-'));
const server = await startServer();
const samples = { panel: [] as number[], plain: [] as number[] };
let panelBytes = 0;
let panelWrites = 0;
try {
  // A warm-up round: module loading and the server's first writes are not measured.
  await once(server.url, makeFolder(work, 'warmup'), false);
  for (let round = 1; round <= rounds; round++) {
    const order = round % 2 ? (['plain', 'panel'] as const) : (['panel', 'plain'] as const);
    for (const mode of order) {
      const dir = makeFolder(work, `r${round}-${mode}`);
      const result = await once(server.url, dir, mode === 'panel');
      samples[mode].push(result.ms);
      if (mode === 'panel') {
        panelBytes += result.bytes;
        panelWrites += result.writes;
      }
      console.log(
        `round ${round} ${mode.padEnd(5)} ${files} files  ${(result.ms / 1000).toFixed(2)} s` +
          (mode === 'panel'
            ? `  (${result.writes} writes, ${result.bytes} bytes to the terminal)`
            : ''),
      );
      rmSync(dir, { recursive: true, force: true });
    }
  }
} finally {
  await stopServer(server);
  rmSync(work, { recursive: true, force: true });
}
const panel = median(samples.panel);
const plain = median(samples.plain);
console.log('');
console.log(`median with the panel:    ${(panel / 1000).toFixed(2)} s`);
console.log(`median without the panel: ${(plain / 1000).toFixed(2)} s`);
console.log(`ratio (panel / plain):    ${(panel / plain).toFixed(3)}`);
console.log(
  `panel output: ${Math.round(panelBytes / rounds)} bytes in ${Math.round(panelWrites / rounds)} writes per sync`,
);
