import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CircuitOpenError,
  ClosedError,
  ConfigError,
  HttpError,
  NetworkError,
  ProtocolError,
  RetryBudgetError,
  TimeoutError,
} from '../errors/upsync-error.ts';
import { classifyError, classifyStatus, type RetryDecision } from './classify.ts';

describe('classifyStatus', () => {
  it.each([200, 201, 204, 299])('%i is done', (status) => {
    expect(classifyStatus(status)).toEqual({ action: 'done', status });
  });

  it.each([408, 429, 500, 502, 503, 504])('%i is retried, using an attempt', (status) => {
    const decision = classifyStatus(status);
    expect(decision).toMatchObject({
      action: 'retry',
      reason: 'status',
      status,
      usesAttempt: true,
      retryAfterMs: undefined,
      pauseHost: false,
    });
  });

  it('marks 429, 503 and 504 as overload signals, and not 408, 500, 502', () => {
    const overload = (status: number) => {
      const decision = classifyStatus(status);
      return decision.action === 'retry' && decision.overload;
    };
    expect([429, 503, 504].map(overload)).toEqual([true, true, true]);
    expect([408, 500, 502].map(overload)).toEqual([false, false, false]);
  });

  it("a 429's Retry-After delays that request only", () => {
    expect(classifyStatus(429, { retryAfterMs: 7_000 })).toMatchObject({
      action: 'retry',
      retryAfterMs: 7_000,
      pauseHost: false,
    });
  });

  it('a 503 with Retry-After pauses the whole host; without it, it does not', () => {
    expect(classifyStatus(503, { retryAfterMs: 30_000 })).toMatchObject({
      action: 'retry',
      retryAfterMs: 30_000,
      pauseHost: true,
    });
    expect(classifyStatus(503, { retryAfterMs: 0 })).toMatchObject({ pauseHost: true });
    expect(classifyStatus(503)).toMatchObject({ action: 'retry', pauseHost: false });
  });

  it.each([401, 403])('%i pauses for auth, even for a project target or a DELETE', (status) => {
    const expected = { action: 'pause', reason: 'auth', status };
    expect(classifyStatus(status)).toEqual(expected);
    expect(classifyStatus(status, { target: 'project' })).toEqual(expected);
    expect(classifyStatus(status, { method: 'DELETE' })).toEqual(expected);
  });

  it('a 404 on the project pauses; on an item it is done for DELETE and a failure otherwise', () => {
    expect(classifyStatus(404, { target: 'project' })).toEqual({
      action: 'pause',
      reason: 'project',
      status: 404,
    });
    expect(classifyStatus(404, { method: 'DELETE' })).toEqual({ action: 'done', status: 404 });
    expect(classifyStatus(404, { method: 'delete', target: 'item' })).toEqual({
      action: 'done',
      status: 404,
    });
    expect(classifyStatus(404, { method: 'PUT' })).toEqual({ action: 'fail', status: 404 });
    expect(classifyStatus(404)).toEqual({ action: 'fail', status: 404 });
  });

  it.each([400, 409, 412, 413, 422])('%i dead-letters the item', (status) => {
    expect(classifyStatus(status)).toEqual({ action: 'dead-letter', status });
    expect(classifyStatus(status, { method: 'DELETE' })).toEqual({ action: 'dead-letter', status });
  });

  it.each([100, 304, 405, 410, 418, 451, 501, 505, 599, 999])(
    '%i is a failure, not retried',
    (status) => {
      expect(classifyStatus(status)).toEqual({ action: 'fail', status });
    },
  );

  it('refuses a status that is not an integer, and a bad retryAfterMs', () => {
    expect(() => classifyStatus(200.5)).toThrow(/status.*200\.5/);
    expect(() => classifyStatus(Number.NaN)).toThrow(TypeError);
    expect(() => classifyStatus(429, { retryAfterMs: -1 })).toThrow(/retryAfterMs.*-1/);
    expect(() => classifyStatus(429, { retryAfterMs: Number.NaN })).toThrow(/retryAfterMs/);
  });

  it('property: only the six transient statuses are ever retried', () => {
    const retried = new Set([408, 429, 500, 502, 503, 504]);
    fc.assert(
      fc.property(
        fc.integer({ min: 100, max: 999 }),
        fc.constantFrom('GET', 'PUT', 'DELETE', 'HEAD', 'POST'),
        fc.constantFrom<'item' | 'project'>('item', 'project'),
        (status, method, target) => {
          const decision = classifyStatus(status, { method, target });
          expect(decision.action === 'retry').toBe(retried.has(status));
          if (decision.action === 'dead-letter') {
            expect([400, 409, 412, 413, 422]).toContain(status);
          }
        },
      ),
    );
  });
});

describe('classifyError', () => {
  it('classifies an HttpError by its status, method, target and Retry-After', () => {
    expect(classifyError(new HttpError(503, 'busy', { retryAfterMs: 9_000 }))).toMatchObject({
      action: 'retry',
      status: 503,
      retryAfterMs: 9_000,
      pauseHost: true,
    });
    expect(classifyError(new HttpError(404, 'gone'), { method: 'DELETE' })).toEqual({
      action: 'done',
      status: 404,
    });
    expect(classifyError(new HttpError(404, 'no project'), { target: 'project' })).toMatchObject({
      action: 'pause',
      reason: 'project',
    });
    expect(classifyError(new HttpError(422, 'bad'))).toEqual({
      action: 'dead-letter',
      status: 422,
    });
    expect(classifyError(new HttpError(401, 'who'))).toMatchObject({
      action: 'pause',
      reason: 'auth',
    });
  });

  it('retries network failures and timeouts, using an attempt', () => {
    expect(classifyError(new NetworkError('reset'))).toEqual({
      action: 'retry',
      reason: 'network',
      status: undefined,
      retryAfterMs: undefined,
      pauseHost: false,
      overload: false,
      usesAttempt: true,
    });
    expect(classifyError(new TimeoutError('slow', 30_000))).toMatchObject({
      action: 'retry',
      reason: 'timeout',
      overload: true,
      usesAttempt: true,
    });
  });

  it('retries a refusal by an open breaker without using an attempt, until its retry time', () => {
    const error = new CircuitOpenError('open', 10_000);
    expect(classifyError(error, { nowMs: 4_000 })).toMatchObject({
      action: 'retry',
      reason: 'circuit-open',
      usesAttempt: false,
      retryAfterMs: 6_000,
      pauseHost: false,
    });
    expect(classifyError(error, { nowMs: 12_000 })).toMatchObject({ retryAfterMs: 0 });
    expect(classifyError(error)).toMatchObject({ retryAfterMs: undefined, usesAttempt: false });
  });

  it('an aborted signal makes any error an abort, even a retryable one', () => {
    const controller = new AbortController();
    controller.abort(new Error('shutdown'));
    const { signal } = controller;
    expect(classifyError(new NetworkError('reset'), { signal })).toEqual({ action: 'abort' });
    expect(classifyError(signal.reason, { signal })).toEqual({ action: 'abort' });
    expect(classifyError(new HttpError(503, 'busy'), { signal })).toEqual({ action: 'abort' });
  });

  it('a live signal does not change the classification', () => {
    const { signal } = new AbortController();
    expect(classifyError(new NetworkError('reset'), { signal })).toMatchObject({
      action: 'retry',
    });
  });

  it('treats DOM abort errors as aborts and DOM timeout errors as timeouts', () => {
    expect(classifyError(new DOMException('aborted', 'AbortError'))).toEqual({ action: 'abort' });
    expect(classifyError(new DOMException('timed out', 'TimeoutError'))).toMatchObject({
      action: 'retry',
      reason: 'timeout',
    });
  });

  it('follows the retryable flag of other upsync errors', () => {
    expect(classifyError(new ProtocolError('truncated body'))).toMatchObject({
      action: 'retry',
      reason: 'retryable-error',
    });
    for (const error of [
      new ConfigError('bad flag'),
      new ClosedError('closed'),
      new RetryBudgetError('spent', 5),
    ]) {
      expect(classifyError(error)).toEqual({ action: 'fail', status: undefined });
    }
  });

  it.each([
    ['a TypeError', new TypeError('x is undefined')],
    ['a plain Error', new Error('boom')],
    ['a string', 'boom'],
    ['undefined', undefined],
    ['null', null],
    ['an object', { status: 503 }],
  ])('does not retry an unknown error: %s', (_label, error) => {
    const decision: RetryDecision = classifyError(error);
    expect(decision).toEqual({ action: 'fail', status: undefined });
  });
});
