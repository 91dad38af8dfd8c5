import { describe, expect, it } from 'vitest';
import { captureIo } from '../e2e-helpers.ts';
import { FakeEngine } from './fake-engine.ts';
import { PanelCollector } from './panel-model.ts';
import { plainProgress, type PlainProgressOptions } from './plain-progress.ts';
import { clockEvery } from './ticker.ts';

function setup(overrides: Partial<PlainProgressOptions> = {}) {
  const engine = new FakeEngine();
  const io = captureIo();
  const collector = new PanelCollector(
    { engine, stats: engine.stats, monitor: engine.monitor },
    { command: 'sync', concurrency: 4, keys: false },
  );
  const stop = plainProgress({
    name: 'upsync sync',
    engine,
    collector,
    io,
    every: clockEvery(engine.clock),
    lines: true,
    errors: true,
    verbose: false,
    ...overrides,
  });
  return { engine, io, stop };
}

const outcome = { seq: 1, status: null, deadLettered: false, error: null } as const;

describe('plainProgress', () => {
  it('writes a line every 2 s only when something moved', async () => {
    const { engine, io, stop } = setup();
    engine.stats.begin(5);
    engine.status_ = { ...engine.status_, pending: 5, inFlight: 2 };
    await engine.clock.advance(2_000);
    expect(io.err).toEqual([
      'upsync sync: 0 done, 5 pending, 2 in flight, 0 retrying (5 taken up, 0 items/s)\n',
    ]);
    await engine.clock.advance(4_000);
    expect(io.err).toHaveLength(1);
    engine.stats.finish('created', 2);
    engine.status_ = { ...engine.status_, pending: 3 };
    await engine.clock.advance(2_000);
    expect(io.err).toHaveLength(2);
    expect(io.err[1]).toMatch(
      /^upsync sync: 2 done, 3 pending, 2 in flight, 0 retrying \(5 taken up, /,
    );
    stop();
    engine.stats.finish('created', 3);
    await engine.clock.advance(10_000);
    expect(io.err).toHaveLength(2);
  });

  it('writes failures as they come, and no progress lines when lines are off (--quiet, --json)', async () => {
    const { engine, io } = setup({ lines: false });
    engine.events.emit('outcome', { ...outcome, key: 'ok.txt', outcome: 'created' });
    engine.events.emit('outcome', {
      ...outcome,
      key: 'bad.txt',
      outcome: 'errored',
      deadLettered: true,
      error: 'HTTP 400',
    });
    engine.stats.begin(1);
    await engine.clock.advance(10_000);
    expect(io.err).toEqual(['upsync sync: dead-lettered: bad.txt: HTTP 400\n']);
  });

  it('--verbose: a line per outcome and per retry', () => {
    const { engine, io } = setup({ lines: false, verbose: true });
    engine.events.emit('outcome', { ...outcome, key: 'a.txt', outcome: 'created' });
    engine.events.emit('outcome', { ...outcome, key: 'b.txt', outcome: 'skipped' });
    engine.events.emit('retrying', {
      key: 'c.txt',
      seq: 3,
      attempt: 2,
      delayMs: 1_200,
      error: 'HTTP 503',
      resend: true,
    });
    expect(io.err).toEqual([
      'upsync sync: a.txt: created\n',
      'upsync sync: b.txt: already there\n',
      'upsync sync: c.txt: retry 2 in 1.2s: HTTP 503\n',
    ]);
  });
});
