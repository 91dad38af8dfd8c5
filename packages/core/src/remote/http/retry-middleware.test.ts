import { describe, expect, it } from 'vitest';
import { CircuitOpenError, NetworkError } from '../../errors/upsync-error.ts';
import { exponentialBackoff } from '../../retry/backoff.ts';
import { Stats } from '../../stats/stats.ts';
import { ManualClock } from '../../time/manual-clock.ts';
import { FakeTransport } from './fake-transport.ts';
import type { HttpRequest } from './http-transport.ts';
import { retryMiddleware, type RetryMiddlewareOptions } from './retry-middleware.ts';

const put: HttpRequest = {
  method: 'PUT',
  url: 'http://h/v1/projects/p/items/a',
  headers: { 'idempotency-key': 'k1' },
  body: new Uint8Array([1, 2, 3]),
};

function setup(fake: FakeTransport, options: RetryMiddlewareOptions = {}) {
  const clock = new ManualClock();
  const stats = new Stats({ clock });
  const send = retryMiddleware({
    clock,
    stats,
    backoff: exponentialBackoff({ baseMs: 100, capMs: 1000, jitter: 'none' }),
    ...options,
  })(fake.send);
  return { clock, stats, send };
}

describe('retryMiddleware', () => {
  it('retries a 503 and counts the retry and the time slept', async () => {
    const fake = FakeTransport.sequence({ status: 503 }, { status: 200, body: 'done' });
    const { clock, stats, send } = setup(fake);
    const pending = send(put);
    await clock.runAll();
    const response = await pending;
    expect(response.status).toBe(200);
    expect(fake.requests).toHaveLength(2);
    expect(fake.responses[0]?.settled).toBe(true);
    expect(stats.snapshot()).toMatchObject({ retries: 1, backoffMs: 100 });
  });

  it("waits for a 429's Retry-After when it is longer than the backoff", async () => {
    const fake = FakeTransport.sequence(
      { status: 429, headers: { 'retry-after': '7' } },
      { status: 201 },
    );
    const { clock, stats, send } = setup(fake);
    const pending = send(put);
    await clock.advance(6_999);
    expect(fake.requests).toHaveLength(1);
    await clock.advance(1);
    expect((await pending).status).toBe(201);
    expect(stats.snapshot().backoffMs).toBe(7_000);
  });

  it('returns the last answer unread once the attempts are spent', async () => {
    const fake = FakeTransport.sequence({
      status: 503,
      body: { error: { code: 'UNAVAILABLE', message: 'busy' } },
    });
    const { clock, stats, send } = setup(fake, { maxAttempts: 3 });
    const pending = send(put);
    await clock.runAll();
    const response = await pending;
    expect(response.status).toBe(503);
    expect(fake.requests).toHaveLength(3);
    expect(fake.responses[2]?.settled).toBe(false);
    expect(await response.json()).toMatchObject({ error: { code: 'UNAVAILABLE' } });
    expect(stats.snapshot().retries).toBe(2);
  });

  it('retries network failures and throws the last one once the budget is spent', async () => {
    const reset = new NetworkError('reset');
    const fake = FakeTransport.sequence(reset);
    const { clock, send } = setup(fake, { maxAttempts: 2 });
    const pending = send(put);
    const outcome = expect(pending).rejects.toBe(reset);
    await clock.runAll();
    await outcome;
    expect(fake.requests).toHaveLength(2);
  });

  it('stops at the time budget', async () => {
    const fake = FakeTransport.sequence({ status: 500 });
    const { clock, send } = setup(fake, { maxAttempts: 100, maxTimeMs: 1_000 });
    const pending = send(put);
    await clock.runAll();
    expect((await pending).status).toBe(500);
    // 100 + 200 + 400 = 700 ms; the next wait (800) would pass 1000.
    expect(fake.requests).toHaveLength(4);
  });

  it.each([400, 401, 403, 404, 409, 412, 413, 422])('does not retry %i', async (status) => {
    const fake = FakeTransport.sequence({ status }, { status: 200 });
    const { send } = setup(fake);
    expect((await send(put)).status).toBe(status);
    expect(fake.requests).toHaveLength(1);
  });

  it('does not retry a POST without an Idempotency-Key, nor a body that cannot be reopened', async () => {
    const fake = FakeTransport.sequence({ status: 503 }, { status: 200 });
    const { send } = setup(fake);
    expect((await send({ method: 'POST', url: 'http://h/x', headers: {} })).status).toBe(503);
    async function* once(): AsyncGenerator<Uint8Array> {
      await Promise.resolve();
      yield new Uint8Array([1]);
    }
    expect((await send({ ...put, body: once() })).status).toBe(200);
    expect(fake.requests).toHaveLength(2);
  });

  it('retries a POST with an Idempotency-Key, reopening its body each time', async () => {
    const fake = FakeTransport.sequence({ status: 502 }, { status: 200 });
    const { clock, send } = setup(fake);
    let opens = 0;
    const pending = send({
      method: 'POST',
      url: 'http://h/x',
      headers: { 'idempotency-key': 'k' },
      body: async function* () {
        opens++;
        await Promise.resolve();
        yield new Uint8Array([1]);
      },
    });
    await clock.runAll();
    expect((await pending).status).toBe(200);
    expect(fake.requests).toHaveLength(2);
    for (const request of fake.requests) {
      if (typeof request.body === 'function') for await (const _ of request.body());
    }
    expect(opens).toBe(2);
  });

  it('waits out an open breaker without using attempts', async () => {
    const clock = new ManualClock();
    let calls = 0;
    const fake = new FakeTransport(() => {
      calls++;
      if (calls <= 3) throw new CircuitOpenError('open', clock.now() + 1_000);
      return { status: 200 };
    });
    const send = retryMiddleware({
      clock,
      maxAttempts: 1,
      backoff: exponentialBackoff({ baseMs: 10, jitter: 'none' }),
    })(fake.send);
    const pending = send(put);
    await clock.runAll();
    expect((await pending).status).toBe(200);
    expect(clock.now()).toBe(3_000);
  });

  it("rejects with the caller's reason when aborted during a wait", async () => {
    const fake = FakeTransport.sequence({ status: 503 });
    const { clock, send } = setup(fake);
    const controller = new AbortController();
    const pending = send({ ...put, signal: controller.signal });
    await clock.settle();
    const reason = new Error('stop');
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
  });

  it('refuses bad options', () => {
    expect(() => retryMiddleware({ maxAttempts: 0 })).toThrow(/maxAttempts.*got 0/);
    expect(() => retryMiddleware({ maxRetryAfterMs: -5 })).toThrow(/maxRetryAfterMs.*-5/);
  });
});
