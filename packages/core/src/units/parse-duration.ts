const UNIT_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/**
 * Reads a duration the way the CLI and config file write them: `500ms`, `10s`,
 * `2m`, `1.5h`, or a sequence such as `1m30s`. A bare number is refused: `10`
 * could mean seconds or milliseconds, and guessing wrong is a 1000x mistake.
 * Throws a TypeError naming the bad text.
 */
export function parseDuration(text: string): number {
  const trimmed = typeof text === 'string' ? text.trim() : '';
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let totalMs = 0;
  let consumed = 0;
  for (let match = part.exec(trimmed); match; match = part.exec(trimmed)) {
    totalMs += Number(match[1]) * UNIT_MS[match[2]!]!;
    consumed = part.lastIndex;
  }
  if (trimmed === '' || consumed !== trimmed.length) {
    throw new TypeError(
      `not a duration: ${JSON.stringify(text)} (write it like 500ms, 10s, 2m or 1h30m)`,
    );
  }
  if (!Number.isSafeInteger(Math.round(totalMs))) {
    throw new TypeError(`duration too long: ${JSON.stringify(text)}`);
  }
  return Math.round(totalMs);
}

/** Writes milliseconds back in the largest units that keep it exact (`90000` -> `1m30s`). */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) throw new TypeError(`not a duration in ms: ${ms}`);
  if (ms === 0) return '0s';
  let rest = Math.round(ms);
  let text = '';
  for (const unit of ['d', 'h', 'm', 's', 'ms'] as const) {
    const size = UNIT_MS[unit]!;
    const count = Math.floor(rest / size);
    if (count > 0) {
      text += `${count}${unit}`;
      rest -= count * size;
    }
  }
  return text;
}
