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

  it('counts the bytes of answered bodies, bytes or declared length', async () => {
    const stats = new Stats();
    const fake = FakeTransport.sequence(
      { status: 201 },
      { status: 200 },
      new NetworkError('reset'),
    );
    const send = statsMiddleware({ stats })(fake.send);
    await send({ method: 'PUT', url: 'http://h/a', headers: {}, body: new Uint8Array(100) });
    const opener = async function* (): AsyncGenerator<Uint8Array> {
      yield await Promise.resolve(new Uint8Array(5));
    };
    await send({
      method: 'PUT',
      url: 'http://h/b',
      headers: { 'content-length': '5' },
      body: () => opener(),
    });
    // Unanswered: the server may never have read it.
    await expect(
      send({ method: 'PUT', url: 'http://h/c', headers: {}, body: new Uint8Array(7) }),
    ).rejects.toThrow();
    expect(stats.snapshot().bytesSent).toBe(105);
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
