import { describe, expect, it } from 'vitest';
import { NetworkError } from '../../errors/upsync-error.ts';
import { Stats } from '../../stats/stats.ts';
import { FakeTransport } from './fake-transport.ts';
import { statsMiddleware } from './stats-middleware.ts';

describe('statsMiddleware', () => {
  it('counts requests by method and status class, failures as network', async () => {
    const stats = new Stats();
    const fake = FakeTransport.sequence(
      { status: 201 },
      { status: 503 },
      new NetworkError('reset'),
    );
    const send = statsMiddleware({ stats })(fake.send);
    await send({ method: 'put', url: 'http://h/a', headers: {} });
    await send({ method: 'GET', url: 'http://h/a', headers: {} });
    await expect(send({ method: 'GET', url: 'http://h/a', headers: {} })).rejects.toThrow();
    const { requests } = stats.snapshot();
    expect(requests.total).toBe(3);
    expect(requests.byMethod.PUT?.byStatus['2xx']).toBe(1);
    expect(requests.byMethod.GET?.byStatus).toMatchObject({ '5xx': 1, network: 1 });
    stats.checkInvariant();
  });

  it('does not count a request the caller aborted', async () => {
    const stats = new Stats();
    const controller = new AbortController();
    controller.abort(new Error('stop'));
    const send = statsMiddleware({ stats })(new FakeTransport().send);
    await expect(
      send({ method: 'GET', url: 'http://h/a', headers: {}, signal: controller.signal }),
    ).rejects.toThrow('stop');
    expect(stats.snapshot().requests.total).toBe(0);
  });
});
