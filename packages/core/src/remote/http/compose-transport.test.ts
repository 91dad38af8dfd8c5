import { describe, expect, it } from 'vitest';
import { NetworkError } from '../../errors/upsync-error.ts';
import { exponentialBackoff } from '../../retry/backoff.ts';
import { Stats } from '../../stats/stats.ts';
import { ManualClock } from '../../time/manual-clock.ts';
import { composeTransport } from './compose-transport.ts';
import { everyString, FakeTransport } from './fake-transport.ts';
import type { HttpRequest } from './http-transport.ts';
import { TransportMonitor } from './transport-monitor.ts';

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

  it("shows each host's pace, slots and breaker to the monitor", async () => {
    const clock = new ManualClock();
    const monitor = new TransportMonitor();
    const fake = FakeTransport.sequence(
      { status: 201 },
      { status: 503, headers: { 'retry-after': '30' } },
    );
    const send = composeTransport(fake.send, {
      clock,
      monitor,
      retry: false,
      concurrency: { max: 8 },
      rateLimit: { ratePerSec: 20 },
    });
    const first = await send(put);
    expect(monitor.snapshot()).toEqual([
      {
        host: 'h',
        ratePerSec: 20,
        ceilingPerSec: 20,
        adaptive: false,
        tokens: 19,
        queued: 0,
        concurrencyLimit: 8,
        concurrencyMax: 8,
        inFlight: 1, // until the body is read
        breaker: 'closed',
        breakerRetryAtMs: null,
      },
    ]);
    await first.dump();
    await (await send(put)).dump();
    const [paused] = monitor.snapshot();
    expect(paused).toMatchObject({
      adaptive: true,
      concurrencyLimit: 4,
      inFlight: 0,
      breaker: 'open',
      breakerRetryAtMs: 30_000,
    });
    expect(paused?.ratePerSec).toBeLessThan(20);
    await clock.advance(30_000);
    expect(monitor.snapshot()[0]).toMatchObject({ breaker: 'closed', breakerRetryAtMs: null });
  });

  it('refuses a base that is not a function', () => {
    expect(() => composeTransport(42 as never)).toThrow(/base.*number/);
  });
});
