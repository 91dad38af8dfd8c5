const HEX = /^[0-9a-f]*$/;

/** Base64 of bytes, with btoa (browsers, workers and Node all have it). */
export function bytesToBase64(bytes: Uint8Array): string {
  // String.fromCharCode takes arguments, and engines cap their count: go in slices.
  const SLICE = 0x8000;
  let binary = '';
  for (let i = 0; i < bytes.length; i += SLICE) {
    binary += String.fromCharCode(...bytes.subarray(i, i + SLICE));
  }
  return btoa(binary);
}

/** Bytes of a lowercase hex string; throws a TypeError for anything else. */
export function hexToBytes(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !HEX.test(hex)) {
    throw new TypeError(`expected lowercase hex, got ${JSON.stringify(hex.slice(0, 80))}`);
  }
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return bytes;
}
