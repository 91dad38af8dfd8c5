import { describe, expect, it } from 'vitest';
import { HttpError, ProtocolError } from '../errors/upsync-error.ts';
import { ManualClock } from '../time/manual-clock.ts';
import { FakeTransport, type FakeHandler } from './http/fake-transport.ts';
import type { RemoteBody } from './remote.ts';
import { UpsyncHttpRemote, type UpsyncHttpRemoteOptions } from './upsync-http-remote.ts';

// SHA-256 of "hello".
const HELLO = '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824';
const hello: RemoteBody = {
  size: 5,
  digest: HELLO,
  async *open() {
    await Promise.resolve();
    yield new TextEncoder().encode('hello');
  },
};

function remote(handler: FakeHandler, options: Partial<UpsyncHttpRemoteOptions> = {}) {
  const fake = new FakeTransport(handler);
  const r = new UpsyncHttpRemote({
    url: 'http://h:1/base/',
    project: 'p1',
    transport: fake.send,
    clock: new ManualClock({ startMs: Date.UTC(2030, 0, 1) }),
    ...options,
  });
  return { fake, remote: r };
}

const item = (key: string) => ({ key, size: 5, sha256: HELLO, version: 1 });

describe('UpsyncHttpRemote', () => {
  it('has an id of URL and project, and refuses bad options showing the value', () => {
    expect(remote(() => ({ status: 200 })).remote.id).toBe('http://h:1/base/v1/projects/p1');
    const base = { project: 'p1', transport: new FakeTransport().send };
    expect(() => new UpsyncHttpRemote({ ...base, url: 'ftp://h' })).toThrow(/http\(s\).*ftp/);
    expect(() => new UpsyncHttpRemote({ ...base, url: 'http://me:pw@h/' })).toThrow(/credentials/);
    expect(() => new UpsyncHttpRemote({ ...base, url: 'http://me:pw@h/' })).not.toThrow(/pw/);
    expect(() => new UpsyncHttpRemote({ ...base, url: 'http://h', project: 'a b' })).toThrow(
      /project.*"a b"/,
    );
    expect(() => new UpsyncHttpRemote({ ...base, url: 'http://h', pageSize: 0 })).toThrow(
      /pageSize/,
    );
  });

  it('puts with the protocol headers and encodes each key segment on its own', async () => {
    const { fake, remote: r } = remote(() => ({
      status: 201,
      headers: { etag: `"${HELLO}"` },
      body: { key: 'k', size: 5, sha256: HELLO, version: 1, unchanged: false },
    }));
    const result = await r.put({
      key: 'a b/ü?#/c',
      body: hello,
      idempotencyKey: 'idem-1',
      ifMatch: HELLO,
      contentType: 'text/plain',
    });
    expect(result).toEqual({
      created: true,
      unchanged: false,
      size: 5,
      digest: HELLO,
      etag: `"${HELLO}"`,
      version: 1,
    });
    const request = fake.requests[0]!;
    expect(request.url).toBe('http://h:1/base/v1/projects/p1/items/a%20b/%C3%BC%3F%23/c');
    expect(request.headers).toMatchObject({
      'content-type': 'text/plain',
      'content-length': '5',
      'content-digest': 'sha-256=:LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=:',
      'idempotency-key': 'idem-1',
      'if-match': `"${HELLO}"`,
    });
    expect(typeof request.body).toBe('function');
  });

  it.each(['..', 'a/./b', '/a', 'a/', 'a//b', 'a\\b', 'a\u0000b', ''])(
    'refuses key %j before sending, as a 400 BAD_KEY',
    async (key) => {
      const { fake, remote: r } = remote(() => ({ status: 200 }));
      await expect(r.put({ key, body: hello, idempotencyKey: 'i' })).rejects.toSatisfy(
        (e) => e instanceof HttpError && e.status === 400 && e.serverCode === 'BAD_KEY',
      );
      expect(fake.requests).toHaveLength(0);
    },
  );

  it('turns an error answer into an HttpError with the code and Retry-After', async () => {
    const { remote: r } = remote(() => ({
      status: 503,
      headers: { 'retry-after': 'Tue, 01 Jan 2030 00:00:30 GMT' },
      body: { error: { code: 'UNAVAILABLE', message: 'busy' } },
    }));
    const error = await r
      .put({ key: 'a', body: hello, idempotencyKey: 'i' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HttpError);
    expect(error).toMatchObject({
      status: 503,
      serverCode: 'UNAVAILABLE',
      retryAfterMs: 30_000,
      retryable: true,
    });
    expect(String(error)).toMatch(/PUT of "a" in project p1: 503 UNAVAILABLE: busy/);
  });

  it('lists every page, passing next as after', async () => {
    const { fake, remote: r } = remote(
      (request) => {
        const after = new URL(request.url).searchParams.get('after');
        return after === null
          ? { status: 200, body: { items: [item('a'), item('b')], next: 'b' } }
          : { status: 200, body: { items: [item('c')], next: null } };
      },
      { pageSize: 2 },
    );
    const keys: string[] = [];
    for await (const state of r.list({ prefix: 'x y' })) keys.push(state.key);
    expect(keys).toEqual(['a', 'b', 'c']);
    expect(fake.requests.map((q) => q.url)).toEqual([
      'http://h:1/base/v1/projects/p1/items?limit=2&prefix=x+y',
      'http://h:1/base/v1/projects/p1/items?limit=2&after=b&prefix=x+y',
    ]);
  });

  it.each([
    [[], /must be a JSON object/],
    [{ items: {}, next: null }, /"items" must be an array/],
    [{ items: [], next: 5 }, /"next" must be a string or null, got 5/],
    [{ items: [7], next: null }, /items\[0\] must be an object/],
    [{ items: [{ ...item('a'), key: '' }], next: null }, /items\[0\]\.key/],
    [{ items: [item('a'), { ...item('b'), size: -1 }], next: null }, /items\[1\]\.size.*-1/],
    [{ items: [{ ...item('a'), sha256: 'XYZ' }], next: null }, /items\[0\]\.sha256.*"XYZ"/],
    [{ items: [{ ...item('a'), version: 'v' }], next: null }, /items\[0\]\.version/],
    [{ items: [], next: 'a' }, /does not move on/],
  ])('refuses listing %j with a ProtocolError naming the field', async (body, message) => {
    const { remote: r } = remote(() => ({ status: 200, body }));
    const run = async () => {
      for await (const _ of r.list()) {
        // drain
      }
    };
    await expect(run()).rejects.toSatisfy((e) => e instanceof ProtocolError);
    await expect(run()).rejects.toThrow(message);
  });

  it('stats with HEAD, and gives null for 404', async () => {
    const { remote: r } = remote((request) =>
      request.url.endsWith('/gone')
        ? { status: 404 }
        : {
            status: 200,
            headers: {
              'content-length': '5',
              etag: `"${HELLO}"`,
              'upsync-version': '3',
              'content-type': 'text/plain',
            },
          },
    );
    expect(await r.stat('gone')).toBeNull();
    expect(await r.stat('a')).toEqual({
      key: 'a',
      size: 5,
      digest: HELLO,
      etag: `"${HELLO}"`,
      version: 3,
      contentType: 'text/plain',
    });
  });

  it('refuses a HEAD answer without a digest ETag', async () => {
    const { remote: r } = remote(() => ({
      status: 200,
      headers: { 'content-length': '5', etag: 'W/"x"' },
    }));
    await expect(r.stat('a')).rejects.toThrow(/ETag must be a quoted SHA-256/);
  });

  it('deletes, taking 404 as done', async () => {
    const { fake, remote: r } = remote((_q, i) => ({ status: i === 0 ? 204 : 404 }));
    expect(await r.delete('a', { idempotencyKey: 'd1' })).toEqual({ existed: true });
    expect(await r.delete('a', { idempotencyKey: 'd1' })).toEqual({ existed: false });
    expect(fake.requests[0]).toMatchObject({
      method: 'DELETE',
      headers: { 'idempotency-key': 'd1' },
    });
  });

  it('splits a batch by item count and bytes, and gives results in order', async () => {
    const { fake, remote: r } = remote(
      (request) => {
        const { items } = JSON.parse(new TextDecoder().decode(request.body as Uint8Array)) as {
          items: { key: string; body: string }[];
        };
        return {
          status: 200,
          body: {
            results: items.map((i) =>
              i.key === 'bad'
                ? {
                    key: i.key,
                    status: 422,
                    sha256: null,
                    version: null,
                    error: { code: 'NOPE', message: 'no' },
                  }
                : { key: i.key, status: 201, sha256: HELLO, version: 1, error: null },
            ),
          },
        };
      },
      { maxBatchItems: 2, maxBatchBytes: 200 },
    );
    const keys = ['a', 'b', 'bad', 'c', 'd'];
    const results = await r.putBatch(
      keys.map((key) => ({ key, body: hello, idempotencyKey: `i-${key}` })),
    );
    expect(results.map((x) => [x.key, x.ok])).toEqual([
      ['a', true],
      ['b', true],
      ['bad', false],
      ['c', true],
      ['d', true],
    ]);
    const failed = results[2];
    expect(failed?.ok === false && failed.error.serverCode).toBe('NOPE');
    expect(fake.requests.length).toBeGreaterThanOrEqual(3);
    for (const request of fake.requests) {
      expect((request.body as Uint8Array).byteLength).toBeLessThanOrEqual(200);
      expect(request.idempotent).toBe(true);
    }
    const first = JSON.parse(new TextDecoder().decode(fake.requests[0]!.body as Uint8Array)) as {
      items: { body: string }[];
    };
    expect(first.items[0]?.body).toBe(btoa('hello'));
  });

  it('refuses a batch answer of the wrong shape', async () => {
    const { remote: r } = remote(() => ({
      status: 200,
      body: { results: [{ key: 'zzz', status: 201 }] },
    }));
    await expect(r.putBatch([{ key: 'a', body: hello, idempotencyKey: 'i' }])).rejects.toThrow(
      /results\[0\]\.key is "zzz", expected "a"/,
    );
  });

  it('refuses calls after close', async () => {
    let closed = 0;
    const { remote: r } = remote(() => ({ status: 200 }), { onClose: () => void closed++ });
    await r.close();
    await r.close();
    expect(closed).toBe(1);
    await expect(r.stat('a')).rejects.toThrow(/closed/);
  });
});
