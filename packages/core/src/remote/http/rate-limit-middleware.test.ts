import { describe, expect, it } from 'vitest';
import { Stats } from '../../stats/stats.ts';
import { ManualClock } from '../../time/manual-clock.ts';
import { FakeTransport } from './fake-transport.ts';
import { rateLimitMiddleware } from './rate-limit-middleware.ts';

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

  it('refuses bad options', () => {
    expect(() => rateLimitMiddleware({ ratePerSec: 0 })).toThrow(/ratePerSec.*got 0/);
    expect(() => rateLimitMiddleware({ ratePerSec: 1, burst: 0.5 })).toThrow(/burst.*0\.5/);
  });
});
