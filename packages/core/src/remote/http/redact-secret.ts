const REDACTED = '[redacted]';
const MAX_DEPTH = 8;

/**
 * Replaces every occurrence of `secret` in an error, in place: its message and
 * stack, its cause chain, and the strings, arrays and plain objects it holds
 * (an HTTP client's error can carry the request's headers). Returns the error.
 * Secrets shorter than 4 characters are left alone, as replacing them would
 * mangle ordinary text without protecting anything.
 */
export function redactSecret<T>(error: T, secret: string): T {
  if (secret.length < 4) return error;
  const seen = new WeakSet<object>();
  const scrub = (value: unknown, depth: number): unknown => {
    if (typeof value === 'string')
      return value.includes(secret) ? value.split(secret).join(REDACTED) : value;
    if (typeof value !== 'object' || value === null || depth > MAX_DEPTH || seen.has(value)) {
      return value;
    }
    seen.add(value);
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) value[i] = scrub(value[i], depth + 1);
      return value;
    }
    if (value instanceof Error || isPlainObject(value)) {
      const record = value as Record<string | symbol, unknown>;
      const keys: (string | symbol)[] = Reflect.ownKeys(record);
      if (value instanceof Error) keys.push('message', 'stack', 'cause');
      for (const key of new Set(keys)) {
        let current: unknown;
        try {
          current = record[key];
        } catch {
          continue;
        }
        const cleaned = scrub(current, depth + 1);
        if (cleaned === current) continue;
        try {
          record[key] = cleaned;
        } catch {
          // A read-only property we cannot clean: drop it if we may.
          Reflect.deleteProperty(record, key);
        }
      }
      return value;
    }
    if (value instanceof Headers) {
      if (value.has('authorization')) value.set('authorization', REDACTED);
      return value;
    }
    return value;
  };
  return scrub(error, 0) as T;
}

function isPlainObject(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
