import { describe, expect, it } from 'vitest';
import { Stats } from '../../stats/stats.ts';
import { ManualClock } from '../../time/manual-clock.ts';
import { FakeTransport } from './fake-transport.ts';
import { rateLimitMiddleware } from './rate-limit-middleware.ts';
import { TransportMonitor } from './transport-monitor.ts';

const get = (n: number) => ({ method: 'GET', url: `http://a/${n}`, headers: {} });

describe('rateLimitMiddleware', () => {
  it('paces each host to its rate and counts the wait', async () => {
    const clock = new ManualClock();
    const stats = new Stats({ clock });
    const sentAt: [string, number][] = [];
    const fake = new FakeTransport((request) => {
      sentAt.push([new URL(request.url).host, clock.now()]);
      return { status: 200 };
    });
    const send = rateLimitMiddleware({ ratePerSec: 2, burst: 1, clock, stats })(fake.send);
    const all = Promise.all([
      send({ method: 'GET', url: 'http://a/1', headers: {} }),
      send({ method: 'GET', url: 'http://a/2', headers: {} }),
      send({ method: 'GET', url: 'http://a/3', headers: {} }),
      send({ method: 'GET', url: 'http://b/1', headers: {} }),
    ]);
    await clock.runAll();
    await all;
    expect(sentAt).toEqual([
      ['a', 0],
      ['b', 0],
      ['a', 500],
      ['a', 1000],
    ]);
    expect(stats.snapshot().limiterWaitMs).toBe(1500);
  });

  it("rejects with the caller's reason when aborted while waiting", async () => {
    const clock = new ManualClock();
    const send = rateLimitMiddleware({ ratePerSec: 1, burst: 1, clock })(new FakeTransport().send);
    await send({ method: 'GET', url: 'http://a/1', headers: {} });
    const controller = new AbortController();
    const pending = send({
      method: 'GET',
      url: 'http://a/2',
      headers: {},
      signal: controller.signal,
    });
    controller.abort(new Error('stop'));
    await expect(pending).rejects.toThrow('stop');
  });

  it('sends unpaced until the host throttles, then paces it from what it accepted', async () => {
    const clock = new ManualClock();
    const monitor = new TransportMonitor();
    const sentAt: number[] = [];
    // Accepts all but the eleventh.
    const fake = new FakeTransport((_request, index) => {
      sentAt.push(clock.now());
      return index === 10 ? { status: 429, headers: { 'retry-after': '1' } } : { status: 200 };
    });
    const send = rateLimitMiddleware({ clock, monitor })(fake.send);
    for (let n = 0; n < 10; n++) await send(get(n));
    expect(monitor.snapshot()[0]).toMatchObject({
      ratePerSec: null,
      tokens: null,
      adaptive: false,
    });
    expect((await send(get(10))).status).toBe(429);
    expect(sentAt.every((t) => t === 0)).toBe(true);
    const [paced] = monitor.snapshot();
    // Ten accepted in the window, cut to 0.8 of that.
    expect(paced).toMatchObject({ ratePerSec: 8, ceilingPerSec: null, adaptive: true });
    expect(paced?.tokens).toBeLessThan(1);
    const later = Promise.all([send(get(11)), send(get(12))]);
    await clock.runAll();
    await later;
    // The bucket was emptied by the cut: the next one waits a whole interval,
    // and the rate grows from there.
    expect(sentAt[11]).toBe(125);
    const gap = (sentAt[12] ?? 0) - 125;
    expect(gap).toBeGreaterThan(100);
    expect(gap).toBeLessThan(125);
  });

  it('paces at the ceiling and never above it, cutting below it on throttles', async () => {
    const clock = new ManualClock();
    const monitor = new TransportMonitor();
    const fake = FakeTransport.sequence({ status: 200 }, { status: 503 }, { status: 200 });
    const send = rateLimitMiddleware({ ratePerSec: 4, burst: 1, clock, monitor })(fake.send);
    const first = Promise.all([send(get(1)), send(get(2))]);
    await clock.runAll();
    await first;
    const [paced] = monitor.snapshot();
    expect(paced).toMatchObject({ ceilingPerSec: 4, adaptive: true });
    expect(paced?.ratePerSec).toBeLessThan(4);
  });

  it('with adaptive off and no rate, adds nothing', async () => {
    const fake = FakeTransport.sequence({ status: 429 });
    const send = rateLimitMiddleware({ adaptive: false })(fake.send);
    for (let n = 0; n < 5; n++) expect((await send(get(n))).status).toBe(429);
    expect(fake.requests).toHaveLength(5);
  });

  it('refuses bad options', () => {
    expect(() => rateLimitMiddleware({ ratePerSec: 0 })).toThrow(/ratePerSec.*got 0/);
    expect(() => rateLimitMiddleware({ ratePerSec: 1, burst: 0.5 })).toThrow(/burst.*0\.5/);
  });
});
