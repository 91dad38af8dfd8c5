import { describe, expect, it } from 'vitest';
import { TimeoutError } from '../../errors/upsync-error.ts';
import { ManualClock } from '../../time/manual-clock.ts';
import { FakeTransport, hangingTransport } from './fake-transport.ts';
import type { HttpRequest } from './http-transport.ts';
import { timeoutMiddleware } from './timeout-middleware.ts';

const get: HttpRequest = { method: 'GET', url: 'http://h/v1/x?secret=1', headers: {} };

describe('timeoutMiddleware', () => {
  it('rejects a request with no answer after 30 s with a TimeoutError', async () => {
    const clock = new ManualClock();
    const send = timeoutMiddleware({ clock })(hangingTransport);
    const pending = send(get);
    const outcome = expect(pending).rejects.toSatisfy(
      (error) => error instanceof TimeoutError && error.timeoutMs === 30_000,
    );
    await clock.advance(29_999);
    await clock.advance(1);
    await outcome;
    await expect(pending).rejects.toThrow(/GET http:\/\/h\/v1\/x timed out after 30000 ms/);
  });

  it('gives a larger body 1 s more per MiB', async () => {
    const clock = new ManualClock();
    const send = timeoutMiddleware({ clock })(hangingTransport);
    let failed = false;
    const pending = send({
      ...get,
      method: 'PUT',
      headers: { 'content-length': String(10 * 1024 * 1024) },
    }).catch((error: unknown) => {
      failed = true;
      return error;
    });
    await clock.advance(39_999);
    expect(failed).toBe(false);
    await clock.advance(1);
    expect(await pending).toBeInstanceOf(TimeoutError);
  });

  it('takes a per-request timeoutMs', async () => {
    const clock = new ManualClock();
    const send = timeoutMiddleware({ clock })(hangingTransport);
    const pending = send({ ...get, timeoutMs: 500 });
    const outcome = expect(pending).rejects.toBeInstanceOf(TimeoutError);
    await clock.advance(500);
    await outcome;
  });

  it("rejects with the caller's reason when the caller aborts", async () => {
    const clock = new ManualClock();
    const send = timeoutMiddleware({ clock })(hangingTransport);
    const controller = new AbortController();
    const pending = send({ ...get, signal: controller.signal });
    const reason = new Error('shutdown');
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    expect(clock.pendingTimers).toBe(0);
  });

  it('keeps the deadline until the body is read, then clears it', async () => {
    const clock = new ManualClock();
    const fake = new FakeTransport(() => ({ status: 200, body: 'ok' }));
    const send = timeoutMiddleware({ clock })(fake.send);
    const response = await send(get);
    expect(clock.pendingTimers).toBe(1);
    expect(await response.text()).toBe('ok');
    expect(clock.pendingTimers).toBe(0);
  });

  it('refuses bad options with a TypeError showing the value', () => {
    expect(() => timeoutMiddleware({ timeoutMs: 0 })).toThrow(/timeoutMs.*got 0/);
    expect(() => timeoutMiddleware({ msPerMiB: -1 })).toThrow(/msPerMiB.*-1/);
  });
});
