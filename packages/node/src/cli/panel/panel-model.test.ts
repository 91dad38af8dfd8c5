import { describe, expect, it } from 'vitest';
import { FakeEngine } from './fake-engine.ts';
import { PanelCollector } from './panel-model.ts';

function collector(engine: FakeEngine, command: 'sync' | 'run' = 'sync'): PanelCollector {
  return new PanelCollector(
    { engine, stats: engine.stats, monitor: engine.monitor },
    { command, concurrency: 16, keys: true, now: () => engine.clock.now(), maxErrors: 2 },
  );
}

describe('PanelCollector', () => {
  it('builds the model from Stats and the status, with an ETA from the rolling rate', async () => {
    const engine = new FakeEngine();
    const panel = collector(engine);
    engine.stats.begin(10);
    for (let i = 0; i < 4; i++) {
      await engine.clock.advance(500);
      engine.stats.finish('created');
    }
    engine.status_ = { ...engine.status_, pending: 6, inFlight: 3, retrying: 1 };
    await panel.refresh();
    const model = panel.model();
    expect(model).toMatchObject({ done: 4, total: 10, pending: 6, retrying: 1 });
    expect(model.itemsPerSec).toBeGreaterThan(0);
    expect(model.etaMs).toBeCloseTo((6 / model.itemsPerSec) * 1000);
    // No transport report yet: the worker bar comes from the engine and --concurrency.
    expect(model.workers).toEqual({ inFlight: 3, limit: 16, max: 16 });
    expect(model.pacing).toBeNull();

    panel.setScanning(true);
    expect(panel.model().etaMs).toBeNull();
  });

  it('takes workers, pacing and the breaker from the transport monitor', () => {
    const engine = new FakeEngine();
    const panel = collector(engine);
    engine.monitor.register('127.0.0.1:8787', () => ({
      concurrencyLimit: 8,
      concurrencyMax: 16,
      inFlight: 5,
      ratePerSec: 12,
      ceilingPerSec: 20,
      adaptive: true,
      queued: 2,
      breaker: 'open',
      breakerRetryAtMs: engine.clock.now() + 4_000,
    }));
    const model = panel.model();
    expect(model.workers).toEqual({ inFlight: 5, limit: 8, max: 16 });
    expect(model.pacing).toEqual({
      host: '127.0.0.1:8787',
      ratePerSec: 12,
      ceilingPerSec: 20,
      adaptive: true,
      queued: 2,
    });
    expect(model.breaker).toEqual({ state: 'open', retryInMs: 4_000 });
  });

  it('keeps the last few errors and follows the user pause', () => {
    const engine = new FakeEngine();
    const panel = collector(engine);
    const outcome = { seq: 1, status: null, deadLettered: false } as const;
    engine.events.emit('outcome', { ...outcome, key: 'a', outcome: 'created', error: null });
    engine.events.emit('retrying', {
      key: 'b',
      seq: 2,
      attempt: 1,
      delayMs: 10,
      error: '503',
      resend: true,
    });
    // A local refusal while the host is paused is not listed: it is no answer of the remote.
    engine.events.emit('retrying', {
      key: 'z',
      seq: 9,
      attempt: 0,
      delayMs: 10,
      error: 'paused',
      resend: false,
    });
    engine.events.emit('outcome', {
      ...outcome,
      key: 'c',
      outcome: 'errored',
      error: '400 bad',
      deadLettered: true,
    });
    engine.events.emit('outcome', { ...outcome, key: 'd', outcome: 'timedOut', error: 'shutdown' });
    expect(panel.model().errors).toEqual([
      { key: 'c', cause: '400 bad', state: 'dead-lettered' },
      { key: 'd', cause: 'shutdown', state: 'pending' },
    ]);
    engine.pause();
    expect(panel.model().paused).toBe(true);
    engine.resume();
    expect(panel.model().paused).toBe(false);
    panel.close();
    engine.pause();
    expect(panel.model().paused).toBe(false);
  });

  it('counts what the watcher brought since run started watching', () => {
    const engine = new FakeEngine();
    const panel = collector(engine, 'run');
    engine.stats.begin(3);
    engine.stats.finish('created', 3);
    panel.changeReceived();
    panel.startWatching();
    expect(panel.model().watching).toEqual({ changes: 0, coalesced: 0, sent: 0 });
    panel.changeReceived();
    panel.changeReceived();
    engine.stats.begin(2);
    engine.stats.coalesce();
    engine.stats.finish('updated');
    expect(panel.model()).toMatchObject({
      phase: 'watching',
      etaMs: null,
      watching: { changes: 2, coalesced: 1, sent: 1 },
    });
  });
});

describe('PanelCollector errors', () => {
  it('drops a retried key once it arrives, and shortens causes that name the key', () => {
    const engine = new FakeEngine();
    const panel = collector(engine);
    const error = 'PUT of "a.txt" in project p1: 503 UNAVAILABLE: try later';
    engine.events.emit('retrying', {
      key: 'a.txt',
      seq: 1,
      attempt: 1,
      delayMs: 5,
      error,
      resend: true,
    });
    expect(panel.model().errors).toEqual([
      { key: 'a.txt', cause: '503 UNAVAILABLE: try later', state: 'retrying' },
    ]);
    engine.events.emit('outcome', {
      key: 'a.txt',
      seq: 1,
      outcome: 'created',
      deadLettered: false,
      status: null,
      error: null,
    });
    expect(panel.model().errors).toEqual([]);
  });
});
