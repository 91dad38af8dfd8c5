import { keyProblem } from '@upsync/core';
import { ApiError } from './api-error.ts';

const projectPattern = /^[A-Za-z0-9._-]{1,128}$/;

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

/** Throws 400 BAD_KEY unless `key` follows the protocol's key rules (one rule, in core). */
export function checkKey(key: string): void {
  const problem = keyProblem(key);
  if (problem !== undefined) throw badKey(problem);
}

/**
 * Turns the item part of a URL path (segments each percent-encoded on their own)
 * into a checked key. Decoding happens here, not in the router, so an encoded
 * "/" or an invalid escape is judged by the key rules and nothing else.
 */
export function parseItemKey(encodedPath: string): string {
  let key: string;
  try {
    // Without a '%' there is nothing to decode: decodeURIComponent would return each segment as is.
    key = !encodedPath.includes('%')
      ? encodedPath
      : encodedPath
          .split('/')
          .map((segment) => decodeURIComponent(segment))
          .join('/');
  } catch {
    throw badKey('the key is not valid percent-encoded UTF-8');
  }
  checkKey(key);
  return key;
}
