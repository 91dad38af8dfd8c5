import { describe, expect, it } from 'vitest';
import { CircuitOpenError, NetworkError } from '../../errors/upsync-error.ts';
import { exponentialBackoff } from '../../retry/backoff.ts';
import { ManualClock } from '../../time/manual-clock.ts';
import { circuitBreakerMiddleware } from './circuit-breaker-middleware.ts';
import { FakeTransport } from './fake-transport.ts';
import { applyMiddleware, type HttpRequest } from './http-transport.ts';
import { retryMiddleware } from './retry-middleware.ts';
import { TransportMonitor } from './transport-monitor.ts';

const get = (host = 'a'): HttpRequest => ({ method: 'GET', url: `http://${host}/x`, headers: {} });

describe('circuitBreakerMiddleware', () => {
  it('opens after consecutive failures and refuses without sending, then probes', async () => {
    const clock = new ManualClock();
    const fake = FakeTransport.sequence(
      new NetworkError('reset'),
      new NetworkError('reset'),
      { status: 500 },
      { status: 200 },
    );
    const send = circuitBreakerMiddleware({ clock, failureThreshold: 3, openMs: 1_000 })(fake.send);
    await expect(send(get())).rejects.toThrow('reset');
    await expect(send(get())).rejects.toThrow('reset');
    expect((await send(get())).status).toBe(500);
    await expect(send(get())).rejects.toSatisfy(
      (e) => e instanceof CircuitOpenError && e.retryAtMs === 1_000,
    );
    expect(fake.requests).toHaveLength(3);
    expect((await send(get('b'))).status).toBe(200); // another host is not affected
    await clock.advance(1_000);
    expect((await send(get())).status).toBe(200);
  });

  it('never opens on 429s: a host asking to slow down is up', async () => {
    const clock = new ManualClock();
    const fake = FakeTransport.sequence(...Array.from({ length: 10 }, () => ({ status: 429 })), {
      status: 200,
    });
    const send = circuitBreakerMiddleware({ clock, failureThreshold: 3 })(fake.send);
    for (let i = 0; i < 10; i++) expect((await send(get())).status).toBe(429);
    expect((await send(get())).status).toBe(200);
    expect(fake.requests).toHaveLength(11);
  });

  it('pauses the whole host for a 503 with Retry-After', async () => {
    const clock = new ManualClock();
    const fake = FakeTransport.sequence(
      { status: 503, headers: { 'retry-after': '10' } },
      { status: 200 },
    );
    const send = circuitBreakerMiddleware({ clock })(fake.send);
    expect((await send(get())).status).toBe(503);
    await clock.advance(9_999);
    await expect(send(get())).rejects.toSatisfy(
      (e) => e instanceof CircuitOpenError && e.retryAtMs === 10_000,
    );
    expect((await send(get('b'))).status).toBe(200);
    await clock.advance(1);
    expect((await send(get())).status).toBe(200);
  });

  it('under the retry middleware, a paused host is waited out without using attempts', async () => {
    const clock = new ManualClock();
    const fake = FakeTransport.sequence(
      { status: 503, headers: { 'retry-after': '5' } },
      { status: 200 },
    );
    const send = applyMiddleware(fake.send, [
      retryMiddleware({
        clock,
        maxAttempts: 2,
        backoff: exponentialBackoff({ baseMs: 100, jitter: 'none' }),
      }),
      circuitBreakerMiddleware({ clock }),
    ]);
    const parallel = send(get());
    const pending = send(get());
    await clock.runAll();
    expect((await pending).status).toBe(200);
    expect((await parallel).status).toBe(200);
    expect(clock.now()).toBeGreaterThanOrEqual(5_000);
  });

  it('does not count an abort or a local fault against the host', async () => {
    const clock = new ManualClock();
    const fake = FakeTransport.sequence(new TypeError('bug'));
    const send = circuitBreakerMiddleware({ clock, failureThreshold: 1 })(fake.send);
    await expect(send(get())).rejects.toThrow('bug');
    await expect(send(get())).rejects.toThrow('bug');
    expect(fake.requests).toHaveLength(2);
  });

  it("shows each host's breaker and when it lets a probe through", async () => {
    const clock = new ManualClock();
    const monitor = new TransportMonitor();
    const fake = FakeTransport.sequence({ status: 500 }, { status: 200 });
    const send = circuitBreakerMiddleware({ clock, monitor, failureThreshold: 1, openMs: 5000 })(
      fake.send,
    );
    await send(get('a'));
    await send(get('b'));
    expect(monitor.snapshot().map((h) => [h.host, h.breaker, h.breakerRetryAtMs])).toEqual([
      ['a', 'open', 5000],
      ['b', 'closed', null],
    ]);
    await clock.advance(5000);
    expect(monitor.snapshot()[0]).toMatchObject({ breaker: 'half-open', breakerRetryAtMs: null });
  });

  it('refuses bad options', () => {
    expect(() => circuitBreakerMiddleware({ failureThreshold: 0 })).toThrow(/failureThreshold/);
    expect(() => circuitBreakerMiddleware({ maxRetryAfterMs: -1 })).toThrow(/maxRetryAfterMs/);
  });
});
