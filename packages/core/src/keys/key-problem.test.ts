import { describe, expect, it } from 'vitest';
import { MAX_KEY_BYTES, keyProblem } from './key-problem.ts';

describe('keyProblem', () => {
  it('accepts ordinary keys, unicode and the longest allowed key', () => {
    expect(keyProblem('a.txt')).toBeUndefined();
    expect(keyProblem('logs/2024/session é 😀.jsonl')).toBeUndefined();
    expect(keyProblem('x'.repeat(MAX_KEY_BYTES))).toBeUndefined();
    // 3 bytes each in UTF-8: 341 of them is 1023 bytes.
    expect(keyProblem('€'.repeat(341))).toBeUndefined();
  });

  it('refuses what the protocol refuses, saying why', () => {
    expect(keyProblem('')).toMatch(/empty/);
    expect(keyProblem('x'.repeat(MAX_KEY_BYTES + 1))).toMatch(/1025 bytes/);
    expect(keyProblem('€'.repeat(342))).toMatch(/1026 bytes/);
    expect(keyProblem('a\\b')).toMatch(/backslash/);
    expect(keyProblem('a\nb')).toMatch(/U\+000A/);
    expect(keyProblem('a\u0085b')).toMatch(/U\+0085/);
    expect(keyProblem('a\u007fb')).toMatch(/U\+007F/);
    expect(keyProblem('/a')).toMatch(/starts or ends/);
    expect(keyProblem('a//b')).toMatch(/empty segment/);
    expect(keyProblem('a/../b')).toMatch(/"\.\."/);
  });
});

describe('keyProblem: UTF-8 length without encoding', () => {
  it('property: measures keys as TextEncoder does', async () => {
    const { default: fc } = await import('fast-check');
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 600 }), (key) => {
        const bytes = new TextEncoder().encode(key).length;
        const tooLong = keyProblem(key)?.includes('bytes of UTF-8') ?? false;
        expect(tooLong).toBe(bytes > MAX_KEY_BYTES);
      }),
    );
  });
});
