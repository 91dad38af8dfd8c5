import { describe, expect, it } from 'vitest';
import { checkKey } from './item-key.ts';
import { TokenRegistry } from './token-registry.ts';

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
