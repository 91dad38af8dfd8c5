import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '@upsync/core/testing';
import { auth, rawRequest, startTestServer, type TestServer } from './test-helpers.ts';

const sha = (text: string | Buffer): string => createHash('sha256').update(text).digest('hex');
const digestHeader = (text: string): string =>
  `sha-256=:${createHash('sha256').update(text).digest('base64')}:`;

interface PutAnswer {
  key: string;
  size: number;
  sha256: string;
  version: number;
  unchanged: boolean;
}

let t: TestServer;
let clock: ManualClock;
const itemUrl = (key: string, project = 'p1'): string =>
  `${t.url}/v1/projects/${project}/items/${key.split('/').map(encodeURIComponent).join('/')}`;

function put(key: string, body: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(itemUrl(key), { method: 'PUT', headers: { ...auth(), ...headers }, body });
}

async function errorCode(response: Response): Promise<string> {
  const body = (await response.json()) as { error: { code: string; message: string } };
  expect(typeof body.error.message).toBe('string');
  return body.error.code;
}

beforeAll(async () => {
  clock = new ManualClock({ startMs: Date.UTC(2030, 0, 1) });
  t = await startTestServer({ clock, maxBodyBytes: 4096 });
});
afterAll(async () => {
  await t.close();
});

describe('health and routing', () => {
  it('answers health without auth', async () => {
    const response = await fetch(`${t.url}/v1/health`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ ok: true });
  });

  it('answers an unknown route 404 with the JSON error', async () => {
    const response = await fetch(`${t.url}/v1/nothing`, { headers: auth() });
    expect(response.status).toBe(404);
    expect(await errorCode(response)).toBe('NOT_FOUND');
  });
});

describe('auth', () => {
  it('refuses a missing token with 401', async () => {
    const response = await fetch(itemUrl('a'), { method: 'PUT', body: 'x' });
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe('Bearer');
    expect(await errorCode(response)).toBe('UNAUTHORIZED');
  });

  it('refuses an unknown token with 401', async () => {
    const response = await fetch(itemUrl('a'), { headers: auth('nope') });
    expect(response.status).toBe(401);
  });

  it("refuses one project's token on another with 403, on every route", async () => {
    for (const [method, path] of [
      ['PUT', '/v1/projects/p2/items/a'],
      ['GET', '/v1/projects/p2/items/a'],
      ['HEAD', '/v1/projects/p2/items/a'],
      ['DELETE', '/v1/projects/p2/items/a'],
      ['GET', '/v1/projects/p2/items'],
      ['POST', '/v1/projects/p2/batch'],
    ] as const) {
      const response = await fetch(`${t.url}${path}`, {
        method,
        headers: auth('token-p1'),
        ...(method === 'PUT' || method === 'POST' ? { body: '{"items":[]}' } : {}),
      });
      expect(response.status, `${method} ${path}`).toBe(403);
    }
    const allowed = await fetch(`${t.url}/v1/projects/p2/items`, { headers: auth('token-p2') });
    expect(allowed.status).toBe(200);
    const wildcard = await fetch(`${t.url}/v1/projects/p2/items`, { headers: auth('token-all') });
    expect(wildcard.status).toBe(200);
  });

  it('refuses a malformed project id with 400', async () => {
    const response = await fetch(`${t.url}/v1/projects/bad%20id/items`, { headers: auth() });
    expect(response.status).toBe(400);
    expect(await errorCode(response)).toBe('BAD_PROJECT');
  });
});

describe('items', () => {
  it('PUT, GET, HEAD, unchanged, replace and DELETE', async () => {
    const created = await put('docs/readme.md', 'hello', { 'content-type': 'text/markdown' });
    expect(created.status).toBe(201);
    expect(created.headers.get('etag')).toBe(`"${sha('hello')}"`);
    expect(await created.json()).toEqual({
      key: 'docs/readme.md',
      size: 5,
      sha256: sha('hello'),
      version: 1,
      unchanged: false,
    });

    const got = await fetch(itemUrl('docs/readme.md'), { headers: auth() });
    expect(got.status).toBe(200);
    expect(await got.text()).toBe('hello');
    expect(got.headers.get('content-type')).toBe('text/markdown');
    expect(got.headers.get('etag')).toBe(`"${sha('hello')}"`);
    expect(got.headers.get('upsync-version')).toBe('1');
    expect(got.headers.get('content-length')).toBe('5');

    const head = await fetch(itemUrl('docs/readme.md'), { method: 'HEAD', headers: auth() });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe('5');
    expect(head.headers.get('etag')).toBe(`"${sha('hello')}"`);
    expect(head.headers.get('content-type')).toBe('text/markdown');
    expect(head.headers.get('upsync-version')).toBe('1');

    const same = await put('docs/readme.md', 'hello', { 'content-type': 'text/markdown' });
    expect(same.status).toBe(200);
    expect(((await same.json()) as PutAnswer).unchanged).toBe(true);

    const replaced = await put('docs/readme.md', 'hello again', {
      'content-type': 'text/markdown',
    });
    expect(replaced.status).toBe(200);
    expect(await replaced.json()).toMatchObject({ version: 2, unchanged: false, size: 11 });

    const deleted = await fetch(itemUrl('docs/readme.md'), { method: 'DELETE', headers: auth() });
    expect(deleted.status).toBe(204);
    const again = await fetch(itemUrl('docs/readme.md'), { method: 'DELETE', headers: auth() });
    expect(again.status).toBe(404);
    expect(await errorCode(again)).toBe('NOT_FOUND');
    expect((await fetch(itemUrl('docs/readme.md'), { headers: auth() })).status).toBe(404);
    expect(
      (await fetch(itemUrl('docs/readme.md'), { method: 'HEAD', headers: auth() })).status,
    ).toBe(404);
  });

  it('defaults the content type to application/octet-stream', async () => {
    const answer = await rawRequest(t.port, 'PUT', '/v1/projects/p1/items/no-type', auth(), 'x');
    expect(answer.status).toBe(201);
    const got = await fetch(itemUrl('no-type'), { headers: auth() });
    expect(got.headers.get('content-type')).toBe('application/octet-stream');
  });

  it('stores a body above the inline size as a file and reads it back', async () => {
    const body = 'y'.repeat(3000);
    expect((await put('big/one', body)).status).toBe(201);
    const got = await fetch(itemUrl('big/one'), { headers: auth() });
    expect(await got.text()).toBe(body);
    expect(got.headers.get('etag')).toBe(`"${sha(body)}"`);
  });

  it('refuses a body over the limit with 413, declared or streamed', async () => {
    const declared = await put('too/big', 'z'.repeat(5000));
    expect(declared.status).toBe(413);
    expect(await errorCode(declared)).toBe('PAYLOAD_TOO_LARGE');

    async function* chunks(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 5; i += 1) {
        await Promise.resolve();
        yield new Uint8Array(1000).fill(97);
      }
    }
    const streamed = await fetch(itemUrl('too/big'), {
      method: 'PUT',
      headers: auth(),
      body: ReadableStreamFrom(chunks()),
      duplex: 'half',
    } as RequestInit);
    expect(streamed.status).toBe(413);
    expect(await errorCode(streamed)).toBe('PAYLOAD_TOO_LARGE');
    expect((await fetch(itemUrl('too/big'), { headers: auth() })).status).toBe(404);
  });
});

function ReadableStreamFrom(source: AsyncGenerator<Uint8Array>): ReadableStream<Uint8Array> {
  return new ReadableStream({
    async pull(controller) {
      const next = await source.next();
      if (next.done) controller.close();
      else controller.enqueue(next.value);
    },
  });
}

describe('key rules', () => {
  const bad = [
    ['traversal', '/v1/projects/p1/items/a/../b'],
    ['encoded traversal', '/v1/projects/p1/items/a/%2E%2E/b'],
    ['dot segment', '/v1/projects/p1/items/a/./b'],
    ['empty segment', '/v1/projects/p1/items/a//b'],
    ['leading slash', '/v1/projects/p1/items//a'],
    ['trailing slash', '/v1/projects/p1/items/a/'],
    ['encoded leading slash', '/v1/projects/p1/items/%2Fa'],
    ['backslash', '/v1/projects/p1/items/a%5Cb'],
    ['NUL', '/v1/projects/p1/items/a%00b'],
    ['control character', '/v1/projects/p1/items/a%01b'],
    ['DEL', '/v1/projects/p1/items/a%7Fb'],
    ['C1 control', '/v1/projects/p1/items/a%C2%85b'],
    ['bad escape', '/v1/projects/p1/items/a%ZZ'],
    ['invalid UTF-8', '/v1/projects/p1/items/a%FF'],
    ['empty key', '/v1/projects/p1/items/'],
    ['over-long key', `/v1/projects/p1/items/${'k'.repeat(1025)}`],
    ['over-long in bytes', `/v1/projects/p1/items/${'%C3%A9'.repeat(513)}`],
  ] as const;
  for (const [name, path] of bad) {
    it(`refuses ${name} with 400 BAD_KEY`, async () => {
      for (const method of ['PUT', 'GET']) {
        const answer = await rawRequest(
          t.port,
          method,
          path,
          auth(),
          method === 'PUT' ? 'x' : undefined,
        );
        expect(answer.status, `${method} ${path}`).toBe(400);
        expect((JSON.parse(answer.body) as { error: { code: string } }).error.code).toBe('BAD_KEY');
      }
    });
  }

  it('accepts a 1024-byte key and unicode segments', async () => {
    expect((await put('k'.repeat(1024), 'x')).status).toBe(201);
    expect((await put('été/日本/😀 x', 'x')).status).toBe(201);
    const got = await fetch(itemUrl('été/日本/😀 x'), { headers: auth() });
    expect(got.status).toBe(200);
  });
});

describe('conditions and digests', () => {
  it('honours If-Match', async () => {
    await put('cond/a', 'one');
    const wrong = await put('cond/a', 'two', { 'if-match': `"${sha('other')}"` });
    expect(wrong.status).toBe(412);
    expect(await errorCode(wrong)).toBe('PRECONDITION_FAILED');
    const right = await put('cond/a', 'two', { 'if-match': `"${sha('one')}"` });
    expect(right.status).toBe(200);
    const absent = await put('cond/absent', 'x', { 'if-match': `"${sha('x')}"` });
    expect(absent.status).toBe(412);
    const deleteWrong = await fetch(itemUrl('cond/a'), {
      method: 'DELETE',
      headers: { ...auth(), 'if-match': `"${sha('one')}"` },
    });
    expect(deleteWrong.status).toBe(412);
    const deleteRight = await fetch(itemUrl('cond/a'), {
      method: 'DELETE',
      headers: { ...auth(), 'if-match': `"${sha('two')}"` },
    });
    expect(deleteRight.status).toBe(204);
  });

  it('honours If-None-Match: *', async () => {
    expect((await put('cond/new', 'x', { 'if-none-match': '*' })).status).toBe(201);
    const exists = await put('cond/new', 'y', { 'if-none-match': '*' });
    expect(exists.status).toBe(412);
    const got = await fetch(itemUrl('cond/new'), { headers: auth() });
    expect(await got.text()).toBe('x');
  });

  it('checks Content-Digest and stores nothing on a mismatch', async () => {
    const ok = await put('digest/a', 'body', { 'content-digest': digestHeader('body') });
    expect(ok.status).toBe(201);
    const bad = await put('digest/b', 'body', { 'content-digest': digestHeader('other') });
    expect(bad.status).toBe(400);
    expect(await errorCode(bad)).toBe('DIGEST_MISMATCH');
    expect((await fetch(itemUrl('digest/b'), { headers: auth() })).status).toBe(404);
  });
});

describe('idempotency', () => {
  it('replays a repeat and changes nothing', async () => {
    const first = await put('idem/a', 'A', { 'idempotency-key': 'k-1' });
    expect(first.status).toBe(201);
    const firstBody = (await first.json()) as unknown;
    expect((await put('idem/a', 'B')).status).toBe(200);
    const repeat = await put('idem/a', 'A', { 'idempotency-key': 'k-1' });
    expect(repeat.status).toBe(201);
    expect(repeat.headers.get('idempotent-replayed')).toBe('true');
    expect(repeat.headers.get('etag')).toBe(`"${sha('A')}"`);
    expect(await repeat.json()).toEqual(firstBody);
    const got = await fetch(itemUrl('idem/a'), { headers: auth() });
    expect(await got.text()).toBe('B');
  });

  it('answers 422 when the key is reused for a different request', async () => {
    expect((await put('idem/b', 'A', { 'idempotency-key': 'k-2' })).status).toBe(201);
    const otherBody = await put('idem/b', 'changed', { 'idempotency-key': 'k-2' });
    expect(otherBody.status).toBe(422);
    expect(await errorCode(otherBody)).toBe('IDEMPOTENCY_KEY_REUSED');
    const otherKey = await put('idem/other', 'A', { 'idempotency-key': 'k-2' });
    expect(otherKey.status).toBe(422);
  });

  it('keeps keys per project', async () => {
    expect((await put('idem/c', 'A', { 'idempotency-key': 'k-3' })).status).toBe(201);
    const p2 = await fetch(`${t.url}/v1/projects/p2/items/idem/c`, {
      method: 'PUT',
      headers: { ...auth('token-p2'), 'idempotency-key': 'k-3' },
      body: 'other',
    });
    expect(p2.status).toBe(201);
    expect(p2.headers.get('idempotent-replayed')).toBeNull();
  });

  it('keeps 4xx answers (412) and replays them', async () => {
    await put('idem/d', 'exists');
    const first = await put('idem/d', 'x', { 'if-none-match': '*', 'idempotency-key': 'k-4' });
    expect(first.status).toBe(412);
    await fetch(itemUrl('idem/d'), { method: 'DELETE', headers: auth() });
    const repeat = await put('idem/d', 'x', { 'if-none-match': '*', 'idempotency-key': 'k-4' });
    expect(repeat.status).toBe(412);
    expect(repeat.headers.get('idempotent-replayed')).toBe('true');
  });

  it('does not keep 5xx answers: the key is free again', async () => {
    t.server.faults.configure({ share500: 1 });
    try {
      const failed = await put('idem/e', 'A', { 'idempotency-key': 'k-5' });
      expect(failed.status).toBe(500);
    } finally {
      t.server.faults.reset();
    }
    const retry = await put('idem/e', 'A', { 'idempotency-key': 'k-5' });
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBeNull();
  });

  it('replays DELETE', async () => {
    await put('idem/f', 'A');
    const first = await fetch(itemUrl('idem/f'), {
      method: 'DELETE',
      headers: { ...auth(), 'idempotency-key': 'k-6' },
    });
    expect(first.status).toBe(204);
    await put('idem/f', 'again');
    const repeat = await fetch(itemUrl('idem/f'), {
      method: 'DELETE',
      headers: { ...auth(), 'idempotency-key': 'k-6' },
    });
    expect(repeat.status).toBe(204);
    expect(repeat.headers.get('idempotent-replayed')).toBe('true');
    expect((await fetch(itemUrl('idem/f'), { headers: auth() })).status).toBe(200);
  });

  it('forgets keys after 24 h', async () => {
    expect((await put('idem/g', 'A', { 'idempotency-key': 'k-7' })).status).toBe(201);
    await clock.advance(24 * 60 * 60 * 1000 + 1);
    const later = await put('idem/g', 'B', { 'idempotency-key': 'k-7' });
    expect(later.status).toBe(200);
    expect(later.headers.get('idempotent-replayed')).toBeNull();
  });

  it('makes a concurrent repeat wait for the first and get its answer', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    async function* slowBody(): AsyncGenerator<Uint8Array> {
      yield new TextEncoder().encode('sl');
      await gate;
      yield new TextEncoder().encode('ow');
    }
    const first = fetch(itemUrl('idem/h'), {
      method: 'PUT',
      headers: { ...auth(), 'idempotency-key': 'k-8', 'content-type': 'text/plain' },
      body: ReadableStreamFrom(slowBody()),
      duplex: 'half',
    } as RequestInit);
    const second = put('idem/h', 'slow', {
      'idempotency-key': 'k-8',
      'content-type': 'text/plain',
    });
    // The second cannot finish while the first holds the key, whatever the arrival order.
    const early = await Promise.race([
      second.then(() => 'answered'),
      new Promise((r) => setImmediate(() => r('waiting'))),
    ]);
    expect(early).toBe('waiting');
    release();
    const [a, b] = await Promise.all([first, second]);
    const replays = [a, b].filter((r) => r.headers.get('idempotent-replayed') === 'true');
    expect(a.status).toBe(201);
    expect(b.status).toBe(201);
    expect(replays).toHaveLength(1);
    expect(await a.json()).toEqual(await b.json());
  });

  it('refuses a malformed Idempotency-Key with 400', async () => {
    const response = await put('idem/i', 'x', { 'idempotency-key': 'has space' });
    expect(response.status).toBe(400);
  });
});

describe('listing', () => {
  const keys = ['list/a', 'list/b', 'list/é', 'list/ﬀ', 'list/😀', 'list/z', 'other/x'];
  beforeAll(async () => {
    for (const key of keys)
      await fetch(
        `${t.url}/v1/projects/p2/items/${key.split('/').map(encodeURIComponent).join('/')}`,
        {
          method: 'PUT',
          headers: auth('token-p2'),
          body: key,
        },
      );
  });

  async function page(query: string): Promise<{
    items: { key: string; size: number; sha256: string; version: number }[];
    next: string | null;
  }> {
    const response = await fetch(`${t.url}/v1/projects/p2/items?${query}`, {
      headers: auth('token-p2'),
    });
    expect(response.status).toBe(200);
    return (await response.json()) as never;
  }

  it('sorts by the byte order of UTF-8 keys', async () => {
    const { items, next } = await page('prefix=list%2F');
    const byBytes = keys
      .filter((k) => k.startsWith('list/'))
      .sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    expect(items.map((item) => item.key)).toEqual(byBytes);
    // UTF-16 order would put the emoji before U+FB00.
    expect(byBytes.indexOf('list/ﬀ')).toBeLessThan(byBytes.indexOf('list/😀'));
    expect(next).toBeNull();
    expect(items[0]).toEqual({ key: 'list/a', size: 6, sha256: sha('list/a'), version: 1 });
  });

  it('pages with limit and after, each key once', async () => {
    const seen: string[] = [];
    let after: string | null = '';
    let pages = 0;
    while (after !== null) {
      const result = await page(
        `limit=2&prefix=list%2F${after ? `&after=${encodeURIComponent(after)}` : ''}`,
      );
      seen.push(...result.items.map((item) => item.key));
      after = result.next;
      pages += 1;
      // Writes during paging: one behind the cursor, one ahead of it.
      if (pages === 1) {
        await fetch(`${t.url}/v1/projects/p2/items/list/0-behind`, {
          method: 'PUT',
          headers: auth('token-p2'),
          body: 'x',
        });
        await fetch(`${t.url}/v1/projects/p2/items/list/zz-ahead`, {
          method: 'PUT',
          headers: auth('token-p2'),
          body: 'x',
        });
        await fetch(`${t.url}/v1/projects/p2/items/list/a`, {
          method: 'PUT',
          headers: auth('token-p2'),
          body: 'rewritten',
        });
      }
    }
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toContain('list/zz-ahead');
    expect(seen).not.toContain('list/0-behind');
    expect(seen).not.toContain('other/x');
  });

  it('refuses a bad limit with 400', async () => {
    for (const limit of ['0', '10001', 'x', '1.5']) {
      const response = await fetch(`${t.url}/v1/projects/p2/items?limit=${limit}`, {
        headers: auth('token-p2'),
      });
      expect(response.status, limit).toBe(400);
    }
  });
});

describe('batch', () => {
  const b64 = (text: string): string => Buffer.from(text).toString('base64');
  async function batch(items: unknown, token = 'token-p1'): Promise<Response> {
    return fetch(`${t.url}/v1/projects/p1/batch`, {
      method: 'POST',
      headers: { ...auth(token), 'content-type': 'application/json' },
      body: JSON.stringify({ items }),
    });
  }

  it('answers one result per item, in request order', async () => {
    await put('batch/existing', 'old');
    const response = await batch([
      { key: 'batch/new', body: b64('n'), contentType: 'text/plain', idempotencyKey: 'b-1' },
      { key: 'batch/../bad', body: b64('x') },
      { key: 'batch/existing', body: b64('new') },
      { key: 'batch/existing', body: b64('new') },
      { key: 'batch/notbase64', body: '***' },
    ]);
    expect(response.status).toBe(200);
    const { results } = (await response.json()) as {
      results: {
        key: string;
        status: number;
        sha256: string | null;
        version: number | null;
        error: { code: string } | null;
      }[];
    };
    expect(results.map((r) => [r.key, r.status])).toEqual([
      ['batch/new', 201],
      ['batch/../bad', 400],
      ['batch/existing', 200],
      ['batch/existing', 200],
      ['batch/notbase64', 400],
    ]);
    expect(results[0]).toMatchObject({ sha256: sha('n'), version: 1, error: null });
    expect(results[1]!.error?.code).toBe('BAD_KEY');
    expect(results[2]).toMatchObject({ version: 2 });
    expect(results[3]).toMatchObject({ version: 2, unchanged: true });

    const replay = await batch([
      { key: 'batch/new', body: b64('n'), contentType: 'text/plain', idempotencyKey: 'b-1' },
    ]);
    const replayed = (await replay.json()) as { results: { status: number }[] };
    expect(replayed.results[0]!.status).toBe(201);
    const reused = await batch([{ key: 'batch/new', body: b64('other'), idempotencyKey: 'b-1' }]);
    expect(((await reused.json()) as { results: { status: number }[] }).results[0]!.status).toBe(
      422,
    );
  });

  it('refuses more than 1000 items with 413', async () => {
    const items = Array.from({ length: 1001 }, (_, i) => ({ key: `many/${i}`, body: '' }));
    const response = await batch(items);
    expect(response.status).toBe(413);
    expect(await errorCode(response)).toBe('PAYLOAD_TOO_LARGE');
  });

  it('refuses more than 8 MiB with 413', async () => {
    const response = await batch([{ key: 'huge', body: 'A'.repeat(8 * 1024 * 1024 + 4) }]);
    expect(response.status).toBe(413);
  });

  it('answers an item over the body limit 413 and malformed JSON 400', async () => {
    const response = await batch([{ key: 'batch/too-big', body: b64('q'.repeat(5000)) }]);
    const { results } = (await response.json()) as { results: { status: number }[] };
    expect(results[0]!.status).toBe(413);
    const broken = await fetch(`${t.url}/v1/projects/p1/batch`, {
      method: 'POST',
      headers: auth(),
      body: '{',
    });
    expect(broken.status).toBe(400);
  });
});

describe('observability', () => {
  it('logs one JSON line per request, without the token', async () => {
    const before = t.logLines.length;
    await put('log/a', 'hello');
    const line = JSON.parse(t.logLines.at(-1)!) as Record<string, unknown>;
    expect(t.logLines.length).toBe(before + 1);
    expect(line).toMatchObject({
      method: 'PUT',
      path: '/v1/projects/p1/items/log/a',
      status: 201,
      bytesIn: 5,
    });
    expect(typeof line.durationMs).toBe('number');
    expect(typeof line.time).toBe('string');
    expect(typeof line.bytesOut).toBe('number');
    expect(t.logLines.join('\n')).not.toContain('token-p1');
  });

  it('serves Prometheus metrics', async () => {
    const response = await fetch(`${t.url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain');
    const text = await response.text();
    expect(text).toMatch(
      /upsync_requests_total\{route="\/v1\/projects\/:project\/items\/\*",method="PUT",status="201"\} \d+/,
    );
    expect(text).toMatch(/upsync_request_duration_seconds_bucket\{route="[^"]+",le="\+Inf"\} \d+/);
    expect(text).toMatch(/upsync_item_writes_total\{result="created"\} \d+/);
    expect(text).toMatch(/upsync_items \d+/);
    expect(text).toMatch(/upsync_request_bytes_total \d+/);
  });
});
