import { describe, expect, it } from 'vitest';
import { FakeEngine } from './fake-engine.ts';
import { StopControl } from './stop-control.ts';
import { sendAll, SendsInFlight, terminalPause } from './stopping.ts';

const settledYet = async (promise: Promise<unknown>): Promise<boolean> => {
  let settled = false;
  void promise.then(() => (settled = true));
  for (let i = 0; i < 10; i++) await Promise.resolve();
  return settled;
};

describe('StopControl', () => {
  it('stops gracefully at the first request and at once at the second', () => {
    const stop = new StopControl();
    const outside = new AbortController();
    stop.follow(outside.signal);
    expect(stop.requested).toBe(false);
    outside.abort();
    expect(stop.signal.aborted).toBe(true);
    expect(stop.nowSignal.aborted).toBe(false);
    stop.request();
    expect(stop.nowSignal.aborted).toBe(true);
  });
});

describe('sendAll', () => {
  it('waits through a user pause for the resume, then flushes again', async () => {
    const engine = new FakeEngine();
    const stop = new StopControl();
    engine.pause();
    const done = sendAll(engine, stop);
    expect(await settledYet(done)).toBe(false);
    engine.resume();
    await done;
    expect(engine.flushes).toBe(2);
  });

  it('returns at a stop request, and at once for a pause that is not the user’s', async () => {
    const engine = new FakeEngine();
    const stop = new StopControl();
    engine.flushGate = new Promise(() => {});
    const done = sendAll(engine, stop);
    expect(await settledYet(done)).toBe(false);
    stop.request();
    await done;

    const refused = new FakeEngine();
    const info = { reason: 'auth', status: 401, message: 'refused' } as const;
    refused.status_ = { ...refused.status_, paused: info };
    await sendAll(refused, new StopControl());
    expect(refused.flushes).toBe(1);
    expect(terminalPause(info)).toBe(info);
    expect(terminalPause({ ...info, reason: 'user' })).toBeNull();
  });
});

describe('SendsInFlight', () => {
  it('waits for the sends in flight at the call, not for later ones', async () => {
    const engine = new FakeEngine();
    const sends = new SendsInFlight(engine);
    expect(await settledYet(sends.settled())).toBe(true);
    engine.events.emit('sending', { key: 'a', seq: 1, attempt: 1 });
    engine.events.emit('sending', { key: 'b', seq: 2, attempt: 1 });
    const settled = sends.settled();
    engine.events.emit('sending', { key: 'c', seq: 3, attempt: 1 });
    engine.events.emit('retrying', {
      key: 'a',
      seq: 1,
      attempt: 1,
      delayMs: 5,
      error: '503',
      resend: true,
    });
    expect(await settledYet(settled)).toBe(false);
    engine.events.emit('outcome', {
      key: 'b',
      seq: 2,
      outcome: 'created',
      deadLettered: false,
      status: null,
      error: null,
    });
    expect(await settledYet(settled)).toBe(true);
    expect(sends.size).toBe(1);
    sends.close();
  });
});
