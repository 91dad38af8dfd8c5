import { describe, expect, it } from 'vitest';
import { TimeoutError } from '../../errors/upsync-error.ts';
import { ManualClock } from '../../time/manual-clock.ts';
import { concurrencyMiddleware } from './concurrency-middleware.ts';
import { fakeResponse, type FakeAnswer } from './fake-transport.ts';
import type { HttpRequest, HttpTransport } from './http-transport.ts';
import { TransportMonitor } from './transport-monitor.ts';

/** A transport whose requests stay open until the test answers them. */
function controlled() {
  const open: { request: HttpRequest; answer: (a: FakeAnswer | Error) => void }[] = [];
  const send: HttpTransport = (request) =>
    new Promise((resolve, reject) => {
      open.push({
        request,
        answer: (a) => (a instanceof Error ? reject(a) : resolve(fakeResponse(a))),
      });
    });
  return { open, send };
}

const get = (n: number): HttpRequest => ({ method: 'GET', url: `http://h/${n}`, headers: {} });

describe('concurrencyMiddleware', () => {
  it('keeps at most max requests in flight per host, until bodies are read', async () => {
    const clock = new ManualClock();
    const { open, send } = controlled();
    const limited = concurrencyMiddleware({ max: 2, clock })(send);
    const pending = [1, 2, 3].map((n) => limited(get(n)));
    await clock.settle();
    expect(open).toHaveLength(2);
    open[0]?.answer({ status: 200 });
    const first = await pending[0]!;
    await clock.settle();
    expect(open).toHaveLength(2); // the slot is held until the body is consumed
    await first.dump();
    await clock.settle();
    expect(open).toHaveLength(3);
  });

  it('halves the limit on overload and grows it back on successes, never above max', async () => {
    const clock = new ManualClock();
    const changes: number[] = [];
    const { open, send } = controlled();
    const limited = concurrencyMiddleware({
      max: 4,
      clock,
      onLimitChange: (_host, limit) => changes.push(limit),
    })(send);
    const run = async (answer: FakeAnswer | Error): Promise<void> => {
      const pending = limited(get(0));
      await clock.settle();
      open.at(-1)?.answer(answer);
      try {
        await (await pending).dump();
      } catch {
        // the timeout case
      }
    };
    await run({ status: 503 });
    expect(changes).toEqual([2]);
    await clock.advance(1_000);
    await run(new TimeoutError('slow', 1));
    expect(changes).toEqual([2, 1]);
    for (let i = 0; i < 10; i++) await run({ status: 200 });
    expect(changes).toEqual([2, 1, 2, 3, 4]);
    await run({ status: 500 }); // not an overload signal
    expect(changes).toEqual([2, 1, 2, 3, 4]);
  });

  it('gives the slot back when the request fails', async () => {
    const { open, send } = controlled();
    const limited = concurrencyMiddleware({ max: 1 })(send);
    const first = limited(get(1));
    const second = limited(get(2));
    await new Promise((r) => setTimeout(r, 0));
    open[0]?.answer(new Error('boom'));
    await expect(first).rejects.toThrow('boom');
    await new Promise((r) => setTimeout(r, 0));
    expect(open).toHaveLength(2);
    open[1]?.answer({ status: 200 });
    expect((await second).status).toBe(200);
  });

  it("shows each host's limit, requests in flight and waiters", async () => {
    const clock = new ManualClock();
    const monitor = new TransportMonitor();
    const { open, send } = controlled();
    const limited = concurrencyMiddleware({ max: 2, clock, monitor })(send);
    const pending = [1, 2, 3].map((n) => limited(get(n)));
    await clock.settle();
    expect(monitor.snapshot()).toEqual([
      expect.objectContaining({
        host: 'h',
        concurrencyLimit: 2,
        concurrencyMax: 2,
        inFlight: 2,
        queued: 1,
      }),
    ]);
    open[0]?.answer({ status: 429 });
    await (await pending[0]!).dump();
    await clock.settle();
    expect(monitor.snapshot()[0]).toMatchObject({ concurrencyLimit: 1, inFlight: 1, queued: 1 });
  });

  it('refuses bad options', () => {
    expect(() => concurrencyMiddleware({ max: 0 })).toThrow(/max.*got 0/);
    expect(() => concurrencyMiddleware({ max: 2, min: 3 })).toThrow(/min.*got 3/);
  });
});
