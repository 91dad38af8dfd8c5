import { hash, timingSafeEqual } from 'node:crypto';

export interface TokenRegistryOptions {
  /**
   * Each token and the projects it may use; `"*"` allows every project. Only
   * SHA-256 digests of the tokens are kept.
   */
  tokens: Readonly<Record<string, readonly string[]>>;
}

/** Who made a request, without the token: safe to use as a map key or a label. */
export interface Principal {
  /** Hex SHA-256 of the token. Never logged, but harmless if it were. */
  readonly id: string;
  allows(project: string): boolean;
}

interface Entry {
  readonly digest: Buffer;
  readonly principal: Principal;
}

const tokenPattern = /^[\x21-\x7e]{1,4096}$/;

function digestOf(token: string): Buffer {
  // One-shot hash: this runs on every request, and createHash costs more.
  return hash('sha256', token, 'buffer');
}

/**
 * The tokens the server accepts. A presented token is hashed and its digest
 * compared with every known digest in constant time, with no early exit, so
 * the time taken reveals nothing about which bytes matched.
 */
export class TokenRegistry {
  readonly #entries: Entry[] = [];

  constructor(options: TokenRegistryOptions) {
    const tokens: unknown = options?.tokens;
    if (typeof tokens !== 'object' || tokens === null || Array.isArray(tokens)) {
      throw new TypeError('tokens must be an object mapping each token to a list of projects');
    }
    let index = 0;
    for (const [token, projects] of Object.entries(tokens as Record<string, unknown>)) {
      index += 1;
      // Name the entry by position: the message must never echo a secret.
      if (!tokenPattern.test(token)) {
        throw new TypeError(`token #${index} must be 1 to 4096 visible ASCII characters`);
      }
      if (!Array.isArray(projects) || !projects.every((p) => typeof p === 'string')) {
        throw new TypeError(
          `token #${index}: projects must be a list of strings, got ${JSON.stringify(projects)}`,
        );
      }
      const all = projects.includes('*');
      const allowed = new Set(projects);
      const digest = digestOf(token);
      this.#entries.push({
        digest,
        principal: {
          id: digest.toString('hex'),
          allows: (project) => all || allowed.has(project),
        },
      });
    }
  }

  get size(): number {
    return this.#entries.length;
  }

  /** The principal an `Authorization` header names, or undefined for none or an unknown token. */
  identify(authorization: string | undefined): Principal | undefined {
    const match = authorization === undefined ? null : /^Bearer +(\S+)\s*$/i.exec(authorization);
    if (!match) return undefined;
    const digest = digestOf(match[1]!);
    let found: Principal | undefined;
    for (const entry of this.#entries) {
      if (timingSafeEqual(entry.digest, digest) && found === undefined) found = entry.principal;
    }
    return found;
  }
}
