/**
 * An answer the server refuses a request with, sent as the protocol's JSON
 * error body. It never leaves this package: handlers throw it and the server
 * turns it into `{"error": {"code", "message"}}`.
 */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    status: number,
    code: string,
    message: string,
    headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.headers = headers;
  }

  /** The JSON body the protocol prescribes for errors. */
  toBody(): { error: { code: string; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}
