import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { formatDuration, parseDuration } from './parse-duration.ts';
import { parseSize } from './parse-size.ts';

describe('parseSize', () => {
  it('reads binary and decimal units', () => {
    expect(parseSize('64MiB')).toBe(64 * 1024 * 1024);
    expect(parseSize('1GiB')).toBe(1024 ** 3);
    expect(parseSize('500kB')).toBe(500_000);
    expect(parseSize('1024')).toBe(1024);
    expect(parseSize('1.5KiB')).toBe(1536);
  });
  it('refuses nonsense, naming it', () => {
    expect(() => parseSize('64 potatoes')).toThrow(/"64 potatoes"/);
    expect(() => parseSize('-1')).toThrow(TypeError);
    expect(() => parseSize('99999999999TiB')).toThrow(/too large/);
  });
});

describe('parseDuration', () => {
  it('reads the forms the CLI documents', () => {
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('10s')).toBe(10_000);
    expect(parseDuration('2m')).toBe(120_000);
    expect(parseDuration(' 1h30m ')).toBe(5_400_000);
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration('0s')).toBe(0);
  });
  it('refuses a bare number, a negative, a space inside and unknown units', () => {
    for (const bad of ['10', '-5s', '10 s', '5 minutes', 's', '', '1h 30m', '1e3ms']) {
      expect(() => parseDuration(bad), bad).toThrow(/not a duration/);
    }
  });
  it('round-trips through formatDuration', () => {
    expect(formatDuration(90_000)).toBe('1m30s');
    expect(formatDuration(1500)).toBe('1s500ms');
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10 * 86_400_000 }), (ms) => {
        expect(parseDuration(formatDuration(ms))).toBe(ms);
      }),
    );
  });
});
