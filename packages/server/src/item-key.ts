import { ApiError } from './api-error.ts';

const projectPattern = /^[A-Za-z0-9._-]{1,128}$/;
// C0, DEL and C1 controls: the protocol refuses "any control character".
// eslint-disable-next-line no-control-regex
const controlPattern = /[\u0000-\u001f\u007f-\u009f]/;
const encoder = new TextEncoder();

export const MAX_KEY_BYTES = 1024;

function badKey(message: string): ApiError {
  return new ApiError(400, 'BAD_KEY', message);
}

/** Throws 400 BAD_PROJECT unless `project` is a protocol project id. */
export function checkProject(project: string): void {
  if (!projectPattern.test(project)) {
    throw new ApiError(
      400,
      'BAD_PROJECT',
      'a project id is 1 to 128 characters of A-Z a-z 0-9 . _ -',
    );
  }
}

/** Throws 400 BAD_KEY unless `key` follows the protocol's key rules. */
export function checkKey(key: string): void {
  if (key.length === 0) throw badKey('the key is empty');
  if (encoder.encode(key).length > MAX_KEY_BYTES) {
    throw badKey(`a key is at most ${MAX_KEY_BYTES} bytes of UTF-8`);
  }
  if (key.includes('\\')) throw badKey('a key may not contain a backslash');
  if (controlPattern.test(key)) throw badKey('a key may not contain control characters');
  if (key.startsWith('/') || key.endsWith('/')) {
    throw badKey('a key may not start or end with "/"');
  }
  for (const segment of key.split('/')) {
    if (segment === '') throw badKey('a key may not have an empty segment');
    if (segment === '.' || segment === '..')
      throw badKey('a key may not have "." or ".." segments');
  }
}

/**
 * Turns the item part of a URL path (segments each percent-encoded on their own)
 * into a checked key. Decoding happens here, not in the router, so an encoded
 * "/" or an invalid escape is judged by the key rules and nothing else.
 */
export function parseItemKey(encodedPath: string): string {
  let key: string;
  try {
    key = encodedPath
      .split('/')
      .map((segment) => decodeURIComponent(segment))
      .join('/');
  } catch {
    throw badKey('the key is not valid percent-encoded UTF-8');
  }
  checkKey(key);
  return key;
}
