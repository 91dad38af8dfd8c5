import { canResendBody, type HttpMiddleware, type HttpRequest } from './http-transport.ts';
import { redactSecret } from './redact-secret.ts';

export interface AuthMiddlewareOptions {
  /** A bearer token. */
  token?: string;
  /**
   * Returns a current token. Called for the first request when no `token` is
   * given, and once more after a 401 (then the request is sent once more). A
   * refresh in flight is shared by every request that needs it.
   */
  getToken?: (options: { signal?: AbortSignal }) => Promise<string>;
}

// RFC 6750's b64token, loosened to any visible ASCII as the protocol's tokens are.
const TOKEN_PATTERN = /^[\x21-\x7e]{1,4096}$/;

function checkToken(name: string, token: unknown): string {
  if (typeof token !== 'string' || !TOKEN_PATTERN.test(token)) {
    // Never echo the value: it may be a real token with a stray character.
    const shown =
      typeof token === 'string' ? `a string of ${token.length} characters` : typeof token;
    throw new TypeError(`${name} must be 1 to 4096 visible ASCII characters, got ${shown}`);
  }
  return token;
}

function withToken(request: HttpRequest, token: string): HttpRequest {
  return { ...request, headers: { ...request.headers, authorization: `Bearer ${token}` } };
}

/**
 * Adds `Authorization: Bearer <token>`. On a 401 it asks `getToken()` once for
 * a new token and sends the request once more (when its body can be sent
 * again). Whatever is thrown through it has every token it used replaced by
 * "[redacted]", message, stack and cause chain included, so no error, log line
 * or report can carry one.
 */
export function authMiddleware(options: AuthMiddlewareOptions): HttpMiddleware {
  const { getToken } = options;
  if (getToken !== undefined && typeof getToken !== 'function') {
    throw new TypeError(`getToken must be a function, got ${typeof getToken}`);
  }
  if (options.token === undefined && getToken === undefined) {
    throw new TypeError('auth needs a token or a getToken function, got neither');
  }
  let current = options.token === undefined ? undefined : checkToken('token', options.token);
  // Every token handed out, so an error raised after a refresh is still cleaned of the old one.
  const used = new Set<string>(current === undefined ? [] : [current]);
  let refreshing: Promise<string> | undefined;

  const redact = (error: unknown): unknown => {
    for (const token of used) redactSecret(error, token);
    return error;
  };

  const refresh = (signal: AbortSignal | undefined): Promise<string> => {
    if (!getToken) return Promise.reject(new Error('no getToken to refresh with'));
    refreshing ??= (async () => {
      try {
        const token = checkToken('getToken() result', await getToken(signal ? { signal } : {}));
        used.add(token);
        current = token;
        return token;
      } finally {
        refreshing = undefined;
      }
    })();
    return refreshing;
  };

  return (next) => async (request) => {
    try {
      const token = current ?? (await refresh(request.signal));
      const response = await next(withToken(request, token));
      if (response.status !== 401 || !getToken || !canResendBody(request.body)) return response;
      await response.dump();
      // A request that failed alongside may have refreshed already; one refresh serves both.
      const fresh =
        current !== undefined && current !== token ? current : await refresh(request.signal);
      return await next(withToken(request, fresh));
    } catch (error) {
      throw redact(error);
    }
  };
}
