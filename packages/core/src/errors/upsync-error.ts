/**
 * Stable error codes. They are part of the public API: tools match on them, so
 * a code is never renamed once released.
 */
export type ErrorCode =
  | 'ERR_CONFIG'
  | 'ERR_STATE'
  | 'ERR_TIMEOUT'
  | 'ERR_NETWORK'
  | 'ERR_HTTP'
  | 'ERR_PROTOCOL'
  | 'ERR_CIRCUIT_OPEN'
  | 'ERR_RETRY_BUDGET'
  | 'ERR_CLOSED'
  | 'ERR_FILE_CHANGED'
  | 'ERR_FILE_GONE';

export interface UpsyncErrorOptions {
  cause?: unknown;
  /** Whether trying the same thing again may succeed. */
  retryable?: boolean;
}

const brandOf = (name: string): symbol => Symbol.for(`upsync.error/${name}`);

/**
 * The base of every error upsync throws on purpose. `instanceof` works across
 * copies of this package (two versions bundled side by side): each class is
 * recognised by a `Symbol.for` brand, not by its identity.
 */
export class UpsyncError extends Error {
  static readonly brand: symbol = brandOf('UpsyncError');
  readonly code: ErrorCode;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: UpsyncErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? false;
    // Stamp the brand of every class from new.target up to UpsyncError.
    for (
      let ctor: unknown = new.target;
      ctor && ctor !== Error;
      ctor = Object.getPrototypeOf(ctor)
    ) {
      const brand = (ctor as { brand?: symbol }).brand;
      if (brand) Object.defineProperty(this, brand, { value: true });
    }
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return (
      typeof value === 'object' &&
      value !== null &&
      (value as Record<symbol, unknown>)[this.brand] === true
    );
  }
}

/** A setting or argument the user must fix. The CLI exits 2 for these. */
export class ConfigError extends UpsyncError {
  static override readonly brand: symbol = brandOf('ConfigError');
  constructor(message: string, options: UpsyncErrorOptions = {}) {
    super('ERR_CONFIG', message, { ...options, retryable: false });
  }
}

/** Local state (outbox, lock) is corrupt, locked or unwritable. Exit 2. */
export class StateError extends UpsyncError {
  static override readonly brand: symbol = brandOf('StateError');
  constructor(message: string, options: UpsyncErrorOptions = {}) {
    super('ERR_STATE', message, { ...options, retryable: false });
  }
}

export class TimeoutError extends UpsyncError {
  static override readonly brand: symbol = brandOf('TimeoutError');
  readonly timeoutMs: number;
  constructor(message: string, timeoutMs: number, options: UpsyncErrorOptions = {}) {
    super('ERR_TIMEOUT', message, { retryable: true, ...options });
    this.timeoutMs = timeoutMs;
  }
}

/** The request never got an answer: reset, refused, DNS, TLS. */
export class NetworkError extends UpsyncError {
  static override readonly brand: symbol = brandOf('NetworkError');
  constructor(message: string, options: UpsyncErrorOptions = {}) {
    super('ERR_NETWORK', message, { retryable: true, ...options });
  }
}

export interface HttpErrorOptions extends UpsyncErrorOptions {
  /** The server's machine-readable code, from the protocol's JSON error body. */
  serverCode?: string;
  /** The wait the server asked for, already parsed and capped. */
  retryAfterMs?: number;
}

/** The remote answered with a status that is not success. */
export class HttpError extends UpsyncError {
  static override readonly brand: symbol = brandOf('HttpError');
  readonly status: number;
  readonly serverCode: string | undefined;
  readonly retryAfterMs: number | undefined;
  constructor(status: number, message: string, options: HttpErrorOptions = {}) {
    super('ERR_HTTP', message, options);
    this.status = status;
    this.serverCode = options.serverCode;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** The remote answered, but not in the shape the protocol promises. */
export class ProtocolError extends UpsyncError {
  static override readonly brand: symbol = brandOf('ProtocolError');
  constructor(message: string, options: UpsyncErrorOptions = {}) {
    super('ERR_PROTOCOL', message, { retryable: true, ...options });
  }
}

/** The circuit breaker refused the call; it uses no retry attempt. */
export class CircuitOpenError extends UpsyncError {
  static override readonly brand: symbol = brandOf('CircuitOpenError');
  /** When the breaker lets a probe through, in clock ms. */
  readonly retryAtMs: number;
  constructor(message: string, retryAtMs: number, options: UpsyncErrorOptions = {}) {
    super('ERR_CIRCUIT_OPEN', message, { retryable: true, ...options });
    this.retryAtMs = retryAtMs;
  }
}

/** The retry budget (attempts or total time) ran out; `cause` is the last failure. */
export class RetryBudgetError extends UpsyncError {
  static override readonly brand: symbol = brandOf('RetryBudgetError');
  readonly attempts: number;
  constructor(message: string, attempts: number, options: UpsyncErrorOptions = {}) {
    super('ERR_RETRY_BUDGET', message, { ...options, retryable: false });
    this.attempts = attempts;
  }
}

/** The component was closed while the call waited. */
export class ClosedError extends UpsyncError {
  static override readonly brand: symbol = brandOf('ClosedError');
  constructor(message: string, options: UpsyncErrorOptions = {}) {
    super('ERR_CLOSED', message, { ...options, retryable: false });
  }
}

/** True for an UpsyncError from any copy of this package. */
export function isUpsyncError(value: unknown): value is UpsyncError {
  return value instanceof UpsyncError;
}
