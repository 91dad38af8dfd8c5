/** The protocol's limit on a key's UTF-8 length (shared/PROTOCOL.md "Basics"). */
export const MAX_KEY_BYTES = 1024;

// C0, DEL and C1 controls: the protocol refuses "any control character".
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** The length of `text` in UTF-8, without encoding it (this runs on every request). */
function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      // A surrogate pair is one code point of 4 bytes; a lone surrogate encodes as U+FFFD (3).
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

/**
 * Why the protocol refuses `key` (400 BAD_KEY), or undefined when the key is
 * fine. One rule for every side: the server refuses with it, the remote checks
 * before sending (URL parsing would turn `a/..` into another item), and the
 * folder source reports such files as skipped instead of dead-lettering each.
 */
export function keyProblem(key: unknown): string | undefined {
  if (typeof key !== 'string') return `a key must be a string, got ${typeof key}`;
  if (key.length === 0) return 'the key is empty';
  const bytes = utf8Length(key);
  if (bytes > MAX_KEY_BYTES) {
    return `the key is ${bytes} bytes of UTF-8; the protocol allows at most ${MAX_KEY_BYTES}`;
  }
  if (key.includes('\\')) return 'the key contains a backslash, which the protocol refuses';
  const control = CONTROL.exec(key);
  if (control) {
    const code = control[0].codePointAt(0)!.toString(16).padStart(4, '0');
    return `the key contains the control character U+${code.toUpperCase()}, which the protocol refuses`;
  }
  if (key.startsWith('/') || key.endsWith('/')) return 'the key starts or ends with "/"';
  for (const segment of key.split('/')) {
    if (segment === '') return 'the key has an empty segment';
    if (segment === '.' || segment === '..') return 'the key has a "." or ".." segment';
  }
  return undefined;
}
