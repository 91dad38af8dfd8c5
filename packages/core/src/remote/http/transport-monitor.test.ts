import { describe, expect, it } from 'vitest';
import { TransportMonitor } from './transport-monitor.ts';

describe('TransportMonitor', () => {
  it('merges every provider of a host over the defaults, hosts in the order first seen', () => {
    const monitor = new TransportMonitor();
    let inFlight = 1;
    monitor.register('b:1', () => ({ inFlight, concurrencyLimit: 4, concurrencyMax: 16 }));
    monitor.register('a:1', () => ({ breaker: 'open', breakerRetryAtMs: 500 }));
    monitor.register('b:1', () => ({ ratePerSec: 10, tokens: 3, adaptive: true }));
    inFlight = 3;
    const [b, a] = monitor.snapshot();
    expect(b).toMatchObject({ host: 'b:1', inFlight: 3, concurrencyLimit: 4, ratePerSec: 10 });
    expect(b?.breaker).toBe('closed');
    expect(a).toMatchObject({
      host: 'a:1',
      breaker: 'open',
      breakerRetryAtMs: 500,
      ratePerSec: null,
    });
  });

  it('adds up the queues of every part', () => {
    const monitor = new TransportMonitor();
    monitor.register('h', () => ({ queued: 3, tokens: 0.5 }));
    monitor.register('h', () => ({ queued: 2, inFlight: 4 }));
    expect(monitor.snapshot()[0]).toMatchObject({ queued: 5, tokens: 0.5, inFlight: 4 });
  });

  it('is empty before any host was seen', () => {
    expect(new TransportMonitor().snapshot()).toEqual([]);
  });
});
