import { describe, expect, it } from 'vitest';
import { NetworkError, ProtocolError, TimeoutError } from '../../errors/upsync-error.ts';
import { fetchTransport } from './fetch-transport.ts';

describe('fetchTransport', () => {
  it('sends the request, collecting a streamed body, and reads the answer', async () => {
    let seen: { url: string; init: RequestInit } | undefined;
    const send = fetchTransport({
      fetch: (url, init) => {
        seen = { url: url as string, init: init ?? {} };
        return Promise.resolve(
          new Response('{"ok":true}', { status: 201, headers: { 'X-Thing': 'a' } }),
        );
      },
    });
    const response = await send({
      method: 'PUT',
      url: 'http://h/x',
      headers: { 'content-length': '4', 'idempotency-key': 'k' },
      body: async function* () {
        await Promise.resolve();
        yield new Uint8Array([1, 2]);
        yield new Uint8Array([3, 4]);
      },
    });
    expect(response.status).toBe(201);
    expect(response.headers['x-thing']).toBe('a');
    expect(await response.json()).toEqual({ ok: true });
    expect([...(seen?.init.body as Uint8Array)]).toEqual([1, 2, 3, 4]);
    expect(seen?.init.headers).toEqual({ 'idempotency-key': 'k' });
  });

  it('maps a network failure to NetworkError with a cleaned cause', async () => {
    const failure = new TypeError('fetch failed', {
      cause: Object.assign(new Error('connect ECONNREFUSED'), {
        code: 'ECONNREFUSED',
        headers: { authorization: 'Bearer x' },
      }),
    });
    const send = fetchTransport({ fetch: () => Promise.reject(failure) });
    const error = await send({ method: 'GET', url: 'http://u:p@h/x?q', headers: {} }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(NetworkError);
    expect(String(error)).toContain('GET http://h/x failed before an answer (ECONNREFUSED)');
    expect(JSON.stringify((error as Error).cause)).not.toContain('Bearer');
  });

  it('maps a DOM TimeoutError and keeps the caller abort reason', async () => {
    const timeout = fetchTransport({
      fetch: () => Promise.reject(new DOMException('slow', 'TimeoutError')),
    });
    await expect(timeout({ method: 'GET', url: 'http://h/x', headers: {} })).rejects.toBeInstanceOf(
      TimeoutError,
    );
    const controller = new AbortController();
    const reason = new Error('stop');
    const aborted = fetchTransport({
      fetch: () => {
        controller.abort(reason);
        return Promise.reject(new DOMException('aborted', 'AbortError'));
      },
    });
    await expect(
      aborted({ method: 'GET', url: 'http://h/x', headers: {}, signal: controller.signal }),
    ).rejects.toBe(reason);
  });

  it('rejects a body that is not JSON with a ProtocolError', async () => {
    const send = fetchTransport({ fetch: () => Promise.resolve(new Response('{"items": [')) });
    const response = await send({ method: 'GET', url: 'http://h/x', headers: {} });
    await expect(response.json()).rejects.toBeInstanceOf(ProtocolError);
  });
});
