import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { compareKeys } from './compare-keys.ts';

function compareBytes(a: string, b: string): number {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i]! < y[i]! ? -1 : 1;
  }
  return Math.sign(x.length - y.length);
}

describe('compareKeys', () => {
  it('puts an emoji after U+FB00, as UTF-8 bytes do (UTF-16 order would not)', () => {
    expect(compareKeys('a/😀', 'a/ﬀ')).toBe(1);
    expect('a/😀' < 'a/ﬀ').toBe(true);
    expect(['b', 'a/😀', 'a/ﬀ', 'a', 'a/'].sort(compareKeys)).toEqual([
      'a',
      'a/',
      'a/ﬀ',
      'a/😀',
      'b',
    ]);
  });

  it('property: agrees with comparing the UTF-8 bytes', () => {
    const text = fc.string({ unit: 'binary', maxLength: 12 });
    fc.assert(
      fc.property(text, text, (a, b) => {
        expect(compareKeys(a, b)).toBe(compareBytes(a, b));
      }),
      { numRuns: 2000 },
    );
  });
});
