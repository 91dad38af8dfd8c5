const units: Readonly<Record<string, number>> = {
  '': 1,
  b: 1,
  k: 1000,
  kb: 1000,
  m: 1000 ** 2,
  mb: 1000 ** 2,
  g: 1000 ** 3,
  gb: 1000 ** 3,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

/**
 * Reads a byte size written the way people write them: `65536`, `64MiB`,
 * `1.5GiB`, `500kB`. Binary (KiB) and decimal (kB) units are both accepted.
 * Throws a TypeError naming the bad text.
 */
export function parseSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const factor = match ? units[match[2]!.toLowerCase()] : undefined;
  if (!match || factor === undefined) {
    throw new TypeError(`not a size: ${JSON.stringify(text)} (write it like 65536, 64MiB or 1GiB)`);
  }
  const bytes = Math.floor(Number(match[1]) * factor);
  if (!Number.isSafeInteger(bytes)) throw new TypeError(`size too large: ${JSON.stringify(text)}`);
  return bytes;
}
