import { describe, expect, it } from 'vitest';
import {
  CircuitOpenError,
  ConfigError,
  HttpError,
  NetworkError,
  UpsyncError,
  isUpsyncError,
} from './upsync-error.ts';

describe('UpsyncError', () => {
  it('carries a stable code, cause and retryable flag', () => {
    const cause = new Error('ECONNRESET');
    const error = new NetworkError('connection reset by 127.0.0.1', { cause });
    expect(error.code).toBe('ERR_NETWORK');
    expect(error.retryable).toBe(true);
    expect(error.cause).toBe(cause);
    expect(error.name).toBe('NetworkError');
    expect(new ConfigError('bad').retryable).toBe(false);
    const http = new HttpError(429, 'slow down', {
      retryAfterMs: 2000,
      serverCode: 'RATE_LIMITED',
    });
    expect([http.status, http.retryAfterMs, http.serverCode]).toEqual([429, 2000, 'RATE_LIMITED']);
  });

  it('instanceof follows the class hierarchy', () => {
    const error = new CircuitOpenError('open', 5000);
    expect(error).toBeInstanceOf(CircuitOpenError);
    expect(error).toBeInstanceOf(UpsyncError);
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(NetworkError);
    expect(new Error('plain')).not.toBeInstanceOf(UpsyncError);
    expect(isUpsyncError(null)).toBe(false);
  });

  it('instanceof works for an error built by another copy of the package', () => {
    // A second copy has its own classes but the same Symbol.for brands.
    const brand = Symbol.for('upsync.error/NetworkError');
    const baseBrand = Symbol.for('upsync.error/UpsyncError');
    const foreign = Object.assign(new Error('reset'), { code: 'ERR_NETWORK', retryable: true });
    Object.defineProperty(foreign, brand, { value: true });
    Object.defineProperty(foreign, baseBrand, { value: true });
    expect(foreign).toBeInstanceOf(NetworkError);
    expect(foreign).toBeInstanceOf(UpsyncError);
    expect(foreign).not.toBeInstanceOf(HttpError);
  });
});
