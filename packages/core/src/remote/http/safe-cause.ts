const SAFE_FIELDS = ['code', 'errno', 'syscall', 'address', 'port'] as const;
const MAX_DEPTH = 4;

/**
 * A copy of an error from an HTTP client that keeps what explains the failure
 * (name, message, stack, code, errno, syscall, address, port, and the same of
 * its cause chain) and drops everything else. Client errors can hold the
 * request, its headers and its socket; the Authorization header must not ride
 * along into an error that gets logged or reported.
 */
export function safeCause(error: unknown, depth = 0): unknown {
  if (!(error instanceof Error)) {
    return typeof error === 'string' || typeof error === 'number' ? error : String(error);
  }
  const copy = new Error(error.message);
  copy.name = error.name;
  if (error.stack !== undefined) copy.stack = error.stack;
  const source = error as unknown as Record<string, unknown>;
  const target = copy as unknown as Record<string, unknown>;
  for (const field of SAFE_FIELDS) {
    const value = source[field];
    if (typeof value === 'string' || typeof value === 'number') target[field] = value;
  }
  if (error.cause !== undefined && depth < MAX_DEPTH)
    copy.cause = safeCause(error.cause, depth + 1);
  return copy;
}

/** The `code` of an error or of the first error in its cause chain that has one. */
export function errorCodeOf(error: unknown): string | undefined {
  for (let e: unknown = error, i = 0; e instanceof Error && i <= MAX_DEPTH; e = e.cause, i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}
