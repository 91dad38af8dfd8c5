// Shared by the CLI's end-to-end tests: the reference server on 127.0.0.1
// port 0 with its request log kept in memory, folders of files, and the CLI
// driven in-process with its output captured.
import { createHash } from 'node:crypto';
import { createServer as createHttpServer, request, type Server } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { FaultInjector, SqliteStorage, TokenRegistry, UpsyncServer } from '@upsync/server';
import type { CliIo } from './main.ts';

export const TOKEN = 'e2e-secret-token-7f3a9c';

export interface LogLine {
  method: string;
  path: string;
  status: number;
  idempotencyKey?: string;
  bytesIn: number;
  atMs: number;
}

export interface E2eServer {
  url: string;
  dir: string;
  faults: FaultInjector;
  log: LogLine[];
  /** The log lines of PUTs (optionally of one key). */
  puts(key?: string): LogLine[];
  count(method: string): number;
  close(): Promise<void>;
}

export async function startServer(
  options: { maxBodyBytes?: number; port?: number } = {},
): Promise<E2eServer> {
  const dir = mkdtempSync(join(tmpdir(), 'upsync-e2e-server-'));
  const log: LogLine[] = [];
  const faults = new FaultInjector();
  const server = new UpsyncServer({
    storage: new SqliteStorage({ dir }),
    tokens: new TokenRegistry({ tokens: { [TOKEN]: ['p1'] } }),
    maxBodyBytes: options.maxBodyBytes ?? 64 * 1024 * 1024,
    faults,
    requestLog: (line) => {
      const parsed = JSON.parse(line) as LogLine & { time: string };
      log.push({ ...parsed, atMs: Date.parse(parsed.time) });
    },
  });
  const { url } = await server.listen({ port: options.port ?? 0, host: '127.0.0.1' });
  const itemPath = (key: string): string =>
    `/v1/projects/p1/items/${key.split('/').map(encodeURIComponent).join('/')}`;
  return {
    url,
    dir,
    faults,
    log,
    puts: (key) =>
      log.filter((l) => l.method === 'PUT' && (key === undefined || l.path === itemPath(key))),
    count: (method) => log.filter((l) => l.method === method).length,
    async close() {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** GETs an item's content, or null when the server has none. */
export async function getItem(url: string, key: string): Promise<string | null> {
  const path = key.split('/').map(encodeURIComponent).join('/');
  const response = await fetch(`${url}/v1/projects/p1/items/${path}`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  if (response.status === 404) return null;
  if (response.status !== 200) throw new Error(`GET ${key}: ${response.status}`);
  return response.text();
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * Writes files and sets their mtimes a minute back, out of the digest
 * cache's racy window, so a later pass may trust the cached digests.
 */
export function writeFiles(root: string, files: Record<string, string>, backdate = true): void {
  const past = new Date(Date.now() - 60_000);
  for (const [key, content] of Object.entries(files)) {
    const path = join(root, ...key.split('/'));
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, content);
    if (backdate) utimesSync(path, past, past);
  }
}

export function manyFiles(count: number, prefix = 'logs/session-'): Record<string, string> {
  const files: Record<string, string> = {};
  for (let i = 0; i < count; i++) {
    const key = `${prefix}${String(i).padStart(4, '0')}.jsonl`;
    files[key] = `{"session":${i},"line":"${'x'.repeat(i % 50)}"}\n`;
  }
  return files;
}

export const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

export interface Captured extends CliIo {
  out: string[];
  err: string[];
  readonly stdoutText: string;
  readonly stderrText: string;
}

export function captureIo(): Captured {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    stdout: (text) => void out.push(text),
    stderr: (text) => void err.push(text),
    get stdoutText() {
      return out.join('');
    },
    get stderrText() {
      return err.join('');
    },
  };
}

/** Polls `check` until it is true; throws after `timeoutMs`. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A URL on 127.0.0.1 where nothing listens (a port just freed): connections are refused. */
export async function closedPortUrl(): Promise<{ url: string; port: number }> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return { url: `http://127.0.0.1:${port}`, port };
}

/**
 * A tiny HTTP proxy in front of the server: `refuse` may answer a request
 * itself with a status (the item is refused), and `onPutBody` runs before a
 * PUT's body is read (the sender is held mid-body); `hold` keeps a request
 * unanswered until the proxy closes (a send that cannot finish).
 */
export async function startProxy(
  target: string,
  refuse: (method: string, path: string) => number | null,
  hooks: {
    onPutBody?: (path: string) => Promise<void>;
    hold?: (method: string, path: string) => boolean;
  } = {},
): Promise<{ url: string; close: () => Promise<void> }> {
  const upstream = new URL(target);
  const proxy: Server = createHttpServer((req, res) => {
    const path = req.url ?? '/';
    const status = refuse(req.method ?? 'GET', path);
    if (status !== null) {
      req.resume();
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'REFUSED', message: 'refused by the test proxy' } }));
      return;
    }
    if (hooks.hold?.(req.method ?? 'GET', path)) {
      req.resume();
      return;
    }
    void (async () => {
      if (req.method === 'PUT' && hooks.onPutBody) await hooks.onPutBody(path);
      const forward = request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path,
          headers: req.headers,
        },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      forward.on('error', () => res.destroy());
      req.on('aborted', () => forward.destroy());
      req.on('error', () => forward.destroy());
      req.pipe(forward);
    })();
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const { port } = proxy.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        proxy.closeAllConnections();
        proxy.close(() => resolve());
      }),
  };
}
