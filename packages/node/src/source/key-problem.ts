/** The protocol's limit on a key's UTF-8 length (shared/PROTOCOL.md "Basics"). */
export const MAX_KEY_BYTES = 1024;

// C0, DEL and C1 controls: the protocol refuses "any control character".
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const encoder = new TextEncoder();

/**
 * Why the remote would refuse `key` with 400 BAD_KEY, or undefined when the
 * key is fine. The folder source reports such files as skipped instead of
 * sending them only to have each one dead-lettered.
 */
export function keyProblem(key: string): string | undefined {
  if (key.length === 0) return 'the key is empty';
  const bytes = encoder.encode(key).length;
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
