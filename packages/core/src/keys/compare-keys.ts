/**
 * Orders keys as the protocol does: by the bytes of their UTF-8 encoding. That
 * is code point order, which differs from JavaScript's default UTF-16 order for
 * characters beyond U+FFFF (an emoji sorts after U+FB00, not before).
 */
export function compareKeys(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x < y ? -1 : 1;
    if (x > 0xffff) i++; // both sides hold the same surrogate pair
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}
