import { describe, expect, it } from 'vitest';
import { NetworkError } from '../../errors/upsync-error.ts';
import { authMiddleware } from './auth-middleware.ts';
import { everyString, FakeTransport } from './fake-transport.ts';
import type { HttpRequest } from './http-transport.ts';

const TOKEN = 'sekrit-token-0123456789';
const FRESH = 'fresh-token-9876543210';
const get: HttpRequest = { method: 'GET', url: 'http://h/x', headers: {} };

describe('authMiddleware', () => {
  it('sends the bearer token', async () => {
    const fake = new FakeTransport();
    await authMiddleware({ token: TOKEN })(fake.send)(get);
    expect(fake.requests[0]?.headers.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it('asks getToken() for the first token when none is given', async () => {
    const fake = new FakeTransport();
    let calls = 0;
    const send = authMiddleware({ getToken: () => Promise.resolve(`${TOKEN}${++calls}`) })(
      fake.send,
    );
    await send(get);
    await send(get);
    expect(calls).toBe(1);
    expect(fake.requests[1]?.headers.authorization).toBe(`Bearer ${TOKEN}1`);
  });

  it('on a 401, refreshes once and sends once more', async () => {
    const fake = FakeTransport.sequence({ status: 401 }, { status: 200 });
    let calls = 0;
    const send = authMiddleware({
      token: TOKEN,
      getToken: () => {
        calls++;
        return Promise.resolve(FRESH);
      },
    })(fake.send);
    expect((await send(get)).status).toBe(200);
    expect(calls).toBe(1);
    expect(fake.responses[0]?.settled).toBe(true);
    expect(fake.requests.map((r) => r.headers.authorization)).toEqual([
      `Bearer ${TOKEN}`,
      `Bearer ${FRESH}`,
    ]);
  });

  it('returns a second 401 as it is, without looping', async () => {
    const fake = FakeTransport.sequence({ status: 401 });
    const send = authMiddleware({ token: TOKEN, getToken: () => Promise.resolve(FRESH) })(
      fake.send,
    );
    expect((await send(get)).status).toBe(401);
    expect(fake.requests).toHaveLength(2);
  });

  it('without getToken, a 401 is returned at once', async () => {
    const fake = FakeTransport.sequence({ status: 401 });
    expect((await authMiddleware({ token: TOKEN })(fake.send)(get)).status).toBe(401);
    expect(fake.requests).toHaveLength(1);
  });

  it('shares one refresh among requests refused together', async () => {
    let refused = 0;
    const fake = new FakeTransport((request) =>
      request.headers.authorization === `Bearer ${TOKEN}` && ++refused <= 3
        ? { status: 401 }
        : { status: 200 },
    );
    let calls = 0;
    const send = authMiddleware({
      token: TOKEN,
      getToken: async () => {
        calls++;
        await new Promise((r) => setTimeout(r, 5));
        return FRESH;
      },
    })(fake.send);
    const answers = await Promise.all([send(get), send(get), send(get)]);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    expect(calls).toBe(1);
  });

  it('cleans the token out of everything thrown through it', async () => {
    const inner = new Error(`connect failed for Bearer ${TOKEN}`);
    Object.assign(inner, { headers: { authorization: `Bearer ${TOKEN}` }, list: [TOKEN] });
    const fake = FakeTransport.sequence(new NetworkError(`reset (${TOKEN})`, { cause: inner }));
    const send = authMiddleware({ token: TOKEN })(fake.send);
    const error = await send(get).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NetworkError);
    expect(everyString(error)).not.toContain(TOKEN);
    expect(everyString(error)).toContain('[redacted]');
  });

  it('never shows a bad token in its TypeError', () => {
    expect(() => authMiddleware({ token: 'has space secret' })).toThrow(/16 characters/);
    expect(() => authMiddleware({ token: 'has space secret' })).not.toThrow(/secret/);
    expect(() => authMiddleware({})).toThrow(TypeError);
  });
});
