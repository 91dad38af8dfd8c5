// Shared by this package's tests: a real server on port 0 over a temporary data folder.
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Clock } from '@upsync/core';
import type { FaultInjector } from './fault-injector.ts';
import { SqliteStorage } from './sqlite-storage.ts';
import { TokenRegistry } from './token-registry.ts';
import { UpsyncServer } from './upsync-server.ts';

export const TOKENS = { 'token-p1': ['p1'], 'token-p2': ['p2'], 'token-all': ['*'] };
export const ADMIN_TOKEN = 'admin-token-0123456789';

export interface TestServer {
  url: string;
  port: number;
  dir: string;
  server: UpsyncServer;
  logLines: string[];
  close(): Promise<void>;
}

export interface TestServerOptions {
  maxBodyBytes?: number;
  inlineMaxBytes?: number;
  clock?: Clock;
  faults?: FaultInjector;
  dir?: string;
  /** Wraps or replaces the storage (tests that need to see inside). */
  storage?: (dir: string, inlineMaxBytes: number) => SqliteStorage;
}

export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'upsync-server-test-'));
  const logLines: string[] = [];
  const server = new UpsyncServer({
    storage: (options.storage ?? ((d, i) => new SqliteStorage({ dir: d, inlineMaxBytes: i })))(
      dir,
      options.inlineMaxBytes ?? 1024,
    ),
    tokens: new TokenRegistry({ tokens: TOKENS }),
    maxBodyBytes: options.maxBodyBytes ?? 1024 * 1024,
    adminToken: ADMIN_TOKEN,
    requestLog: (line) => logLines.push(line),
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.faults ? { faults: options.faults } : {}),
  });
  const { url, port } = await server.listen({ port: 0, host: '127.0.0.1' });
  return {
    url,
    port,
    dir,
    server,
    logLines,
    async close() {
      await server.close();
      if (!options.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** Sends a request with the path exactly as given: fetch would normalise "..", "%2e" and the like. */
export function rawRequest(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string | Buffer,
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

export function auth(token = 'token-p1'): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}
