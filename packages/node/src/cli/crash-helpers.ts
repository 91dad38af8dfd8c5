// The crash tests' reference server: like startServer's, but its storage also
// records whether each write was applied or replayed, which the request log
// cannot tell (a replay answers with the same status as the apply it repeats).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  SqliteStorage,
  TokenRegistry,
  UpsyncServer,
  type ServerStorage,
  type WriteRequest,
} from '@upsync/server';
import { TOKEN } from './e2e-helpers.ts';

const BIN = fileURLToPath(new URL('../bin/upsync.ts', import.meta.url));

export interface Applied {
  itemKey: string;
  idempotencyKey: string | undefined;
  status: number;
}

export interface CrashServer {
  url: string;
  /** Writes the storage applied (not replays), in order. */
  applied: Applied[];
  close(): Promise<void>;
}

/** Delegates to `inner`, noting each write that was applied rather than replayed. */
function recording(inner: ServerStorage, applied: Applied[]): ServerStorage {
  return {
    stage: (source, options) => inner.stage(source, options),
    stageBuffer: (body) => inner.stageBuffer(body),
    discard: (body) => inner.discard(body),
    async write(request: WriteRequest) {
      const outcome = await inner.write(request);
      if (!outcome.replayed) {
        applied.push({
          itemKey: request.key,
          idempotencyKey: request.idempotency?.key,
          status: outcome.answer.status,
        });
      }
      return outcome;
    },
    stat: (project, key) => inner.stat(project, key),
    read: (project, key) => inner.read(project, key),
    list: (project, options) => inner.list(project, options),
    countItems: () => inner.countItems(),
    close: () => inner.close(),
  };
}

export async function startCrashServer(): Promise<CrashServer> {
  const dir = mkdtempSync(join(tmpdir(), 'upsync-crash-server-'));
  const applied: Applied[] = [];
  const server = new UpsyncServer({
    storage: recording(new SqliteStorage({ dir }), applied),
    tokens: new TokenRegistry({ tokens: { [TOKEN]: ['p1'] } }),
    maxBodyBytes: 16 * 1024 * 1024,
  });
  const { url } = await server.listen({ port: 0, host: '127.0.0.1' });
  return {
    url,
    applied,
    async close() {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Idempotency-Keys the storage applied more than once with a 2xx answer. */
export function appliedTwice(applied: readonly Applied[]): string[] {
  const seen = new Map<string, number>();
  for (const { idempotencyKey, status } of applied) {
    if (idempotencyKey === undefined || status < 200 || status > 299) continue;
    seen.set(idempotencyKey, (seen.get(idempotencyKey) ?? 0) + 1);
  }
  return [...seen].filter(([, n]) => n > 1).map(([key]) => key);
}

export interface Child {
  /** Resolves with the exit code, or null when killed by a signal. */
  exited: Promise<number | null>;
  output: { stdout: string; stderr: string };
  kill(): void;
}

/** Spawns `node` with `args`; the token comes through UPSYNC_TOKEN. A hung child is killed. */
export function spawnNode(args: string[], hangMs = 60_000): Child {
  const child = spawn(process.execPath, args, {
    env: { ...process.env, UPSYNC_TOKEN: TOKEN },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = { stdout: '', stderr: '' };
  child.stdout.on('data', (chunk: Buffer) => (output.stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output.stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), hangMs);
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
  return { exited, output, kill: () => void child.kill('SIGKILL') };
}

/** The real CLI as a child process. */
export function spawnCli(args: string[], hangMs?: number): Child {
  return spawnNode([BIN, ...args], hangMs);
}

/**
 * A child that opens `dbPath`, begins a transaction, inserts a pending row
 * for `ghostKey` and enough filler that pages spill into the WAL, then says
 * "ready" and waits to be killed before it commits.
 */
export function spawnOpenTransaction(dbPath: string, ghostKey: string): Child {
  const script = `
    const { DatabaseSync } = require('node:sqlite');
    const db = new DatabaseSync(${JSON.stringify(dbPath)});
    db.exec('PRAGMA busy_timeout = 5000; PRAGMA cache_size = 2; BEGIN IMMEDIATE');
    db.prepare(\`INSERT INTO pending (scope_id, seq, key, kind, size, idem_key, lane, ordered,
      attempts, created_ms, next_attempt_ms)
      SELECT scope_id, 999999, ?, 'put', 0, 'ffffffffffffffffffffffffffffffff', 0, 0, 0, 0, 0
      FROM synced LIMIT 1\`).run(${JSON.stringify(ghostKey)});
    db.exec(\`CREATE TABLE crash_filler (x BLOB);
      WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
      INSERT INTO crash_filler SELECT randomblob(4096) FROM n\`);
    process.stdout.write('ready\\n');
    setInterval(() => {}, 1000);
  `;
  return spawnNode(['-e', script]);
}
