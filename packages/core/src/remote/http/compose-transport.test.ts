import { describe, expect, it } from 'vitest';
import { NetworkError } from '../../errors/upsync-error.ts';
import { exponentialBackoff } from '../../retry/backoff.ts';
import { Stats } from '../../stats/stats.ts';
import { ManualClock } from '../../time/manual-clock.ts';
import { composeTransport } from './compose-transport.ts';
import { everyString, FakeTransport } from './fake-transport.ts';
import type { HttpRequest } from './http-transport.ts';

const TOKEN = 'stack-token-abcdef123456';
const put: HttpRequest = {
  method: 'PUT',
  url: 'http://h/v1/projects/p/items/a',
  headers: { 'idempotency-key': 'k' },
  body: new Uint8Array(3),
};

describe('composeTransport', () => {
  it('retries through every layer and counts each request once', async () => {
    const clock = new ManualClock();
    const stats = new Stats({ clock });
    const fake = FakeTransport.sequence(
      { status: 503, headers: { 'retry-after': '2' } },
      new NetworkError('reset'),
      { status: 401 },
      { status: 201 },
    );
    const send = composeTransport(fake.send, {
      clock,
      stats,
      auth: { token: TOKEN, getToken: () => Promise.resolve('fresh-token-1234') },
      retry: { backoff: exponentialBackoff({ baseMs: 100, jitter: 'none' }) },
      rateLimit: { ratePerSec: 10 },
    });
    const pending = send(put);
    await clock.runAll();
    expect((await pending).status).toBe(201);
    const snapshot = stats.snapshot();
    expect(snapshot.requests.total).toBe(4);
    expect(snapshot.requests.byStatus).toMatchObject({ '2xx': 1, '4xx': 1, '5xx': 1, network: 1 });
    expect(snapshot.retries).toBe(2);
    expect(snapshot.backoffMs).toBeGreaterThanOrEqual(2_000);
    expect(fake.requests.at(-1)?.headers.authorization).toBe('Bearer fresh-token-1234');
  });

  it('lets no token out through an error of the base transport', async () => {
    const clock = new ManualClock();
    const fake = new FakeTransport((request) => {
      throw new NetworkError('reset', {
        cause: Object.assign(new Error('socket'), { request: { headers: request.headers } }),
      });
    });
    const send = composeTransport(fake.send, {
      clock,
      auth: { token: TOKEN },
      retry: { maxAttempts: 2 },
    });
    const pending = send(put).catch((e: unknown) => e);
    await clock.runAll();
    const error = await pending;
    expect(error).toBeInstanceOf(NetworkError);
    expect(everyString(error)).not.toContain(TOKEN);
  });

  it('refuses a base that is not a function', () => {
    expect(() => composeTransport(42 as never)).toThrow(/base.*number/);
  });
});
