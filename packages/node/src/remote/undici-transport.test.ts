import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetworkError } from '@upsync/core';
import { UndiciTransport } from './undici-transport.ts';

const TOKEN = 'undici-secret-token-42';
let server: Server;
let base: string;
const received: { headers: IncomingMessage['headers']; body: Buffer; chunks: number }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/reset') {
      req.socket.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks), chunks: chunks.length });
      res.writeHead(201, { 'content-type': 'application/json', 'x-multi': ['a', 'b'] });
      res.end('{"ok":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

describe('UndiciTransport', () => {
  it('streams a body from its opener and reads the answer', async () => {
    const transport = new UndiciTransport();
    try {
      const response = await transport.send({
        method: 'PUT',
        url: `${base}/x`,
        headers: { 'content-length': '6', authorization: `Bearer ${TOKEN}` },
        body: async function* () {
          yield new TextEncoder().encode('abc');
          await new Promise((r) => setTimeout(r, 5));
          yield new TextEncoder().encode('def');
        },
      });
      expect(response.status).toBe(201);
      expect(response.headers['x-multi']).toBe('a, b');
      expect(await response.json()).toEqual({ ok: true });
      expect(received.at(-1)?.body.toString()).toBe('abcdef');
      expect(received.at(-1)?.headers.authorization).toBe(`Bearer ${TOKEN}`);
    } finally {
      await transport.close();
    }
  });

  it('maps a reset and a refused connection to NetworkError, with no token in the cause', async () => {
    const transport = new UndiciTransport();
    try {
      for (const url of [`${base}/reset`, 'http://127.0.0.1:1/refused']) {
        const error = await transport
          .send({ method: 'GET', url, headers: { authorization: `Bearer ${TOKEN}` } })
          .catch((e: unknown) => e);
        expect(error).toBeInstanceOf(NetworkError);
        expect((error as Error).cause).toBeInstanceOf(Error);
        const { inspect } = await import('node:util');
        expect(inspect(error, { depth: 10, showHidden: true })).not.toContain(TOKEN);
      }
    } finally {
      await transport.close();
    }
  });

  it("rejects with the caller's reason on abort", async () => {
    const transport = new UndiciTransport();
    try {
      const controller = new AbortController();
      const reason = new Error('stop');
      controller.abort(reason);
      await expect(
        transport.send({ method: 'GET', url: `${base}/x`, headers: {}, signal: controller.signal }),
      ).rejects.toBe(reason);
    } finally {
      await transport.close();
    }
  });

  it('refuses bad options', () => {
    expect(() => new UndiciTransport({ connections: 0 })).toThrow(/connections.*got 0/);
  });
});
