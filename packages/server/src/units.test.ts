import { describe, expect, it } from 'vitest';
import { checkKey } from './item-key.ts';
import { parseSize } from './parse-size.ts';
import { TokenRegistry } from './token-registry.ts';

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
  });
});

describe('TokenRegistry', () => {
  it('identifies tokens and their projects', () => {
    const registry = new TokenRegistry({ tokens: { secret1: ['a'], secret2: ['*'] } });
    expect(registry.identify('Bearer secret1')?.allows('a')).toBe(true);
    expect(registry.identify('Bearer secret1')?.allows('b')).toBe(false);
    expect(registry.identify('Bearer secret2')?.allows('b')).toBe(true);
    expect(registry.identify('Bearer nope')).toBeUndefined();
    expect(registry.identify(undefined)).toBeUndefined();
    expect(registry.identify('Basic secret1')).toBeUndefined();
    expect(registry.identify('Bearer secret1')?.id).not.toContain('secret1');
  });
  it('never shows a token in its errors', () => {
    expect(() => new TokenRegistry({ tokens: { 'bad token': ['a'] } })).toThrow(/token #1/);
    try {
      new TokenRegistry({ tokens: { 'bad token': ['a'] } });
    } catch (error) {
      expect(String(error)).not.toContain('bad token');
    }
    expect(() => new TokenRegistry({ tokens: { ok: 'a' as never } })).toThrow(/projects/);
  });
});

describe('checkKey', () => {
  it('accepts ordinary keys', () => {
    expect(() => checkKey('a/b/c.txt')).not.toThrow();
    expect(() => checkKey('..a/b..')).not.toThrow();
  });
});
