import type { PendingRow } from '../outbox/outbox-store.ts';
import type { RemoteBody } from '../remote/remote.ts';
import type { FileAccess } from './engine-types.ts';

const encoder = new TextEncoder();

/** SHA-256 as 64 lowercase hex digits, through Web Crypto (browsers, workers and Node alike). */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const hash = new Uint8Array(
    await globalThis.crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>),
  );
  let hex = '';
  for (const byte of hash) hex += byte.toString(16).padStart(2, '0');
  return hex;
}

export function toBytes(body: Uint8Array | string): Uint8Array {
  return typeof body === 'string' ? encoder.encode(body) : body;
}

/** The body of a pending put, opened afresh for each attempt (a file is read when the send starts). */
export function versionBody(row: PendingRow, files: FileAccess | undefined): RemoteBody {
  const body = row.body;
  if (row.kind !== 'put' || body === null || row.digest === null) {
    throw new TypeError(`version ${row.seq} of ${JSON.stringify(row.key)} has no body to send`);
  }
  if (body.type === 'file') {
    if (!files) {
      throw new TypeError(
        `version ${row.seq} of ${JSON.stringify(row.key)} is a file reference, but the engine has no files option`,
      );
    }
    return files.open(body);
  }
  const bytes = body.bytes;
  return {
    size: row.size,
    digest: row.digest,
    ...(row.contentType === null ? {} : { contentType: row.contentType }),
    // eslint-disable-next-line @typescript-eslint/require-await -- an async generator is the body type
    async *open() {
      yield bytes;
    },
  };
}
