import { assertFiniteNumber, assertNonNegative } from '../validate.ts';

/** No Retry-After is honoured beyond this by default: a server cannot park us for hours. */
export const DEFAULT_MAX_RETRY_AFTER_MS = 300_000;

export interface ParseRetryAfterOptions {
  /** The current time in epoch ms (`clock.now()`), which an HTTP-date is measured from. */
  nowMs: number;
  /** The cap on the returned delay. Default {@link DEFAULT_MAX_RETRY_AFTER_MS}. */
  maxMs?: number;
}

const DAY_MS = 86_400_000;
// RFC 9110's "50 years in the future" for two-digit years, in average Gregorian years.
const FIFTY_YEARS_MS = 50 * 365.2425 * DAY_MS;

const MONTHS = 'Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec';
const MONTH_INDEX = new Map(MONTHS.split('|').map((name, i) => [name, i + 1]));
const DAY = '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)';
const DAY_LONG = '(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)';
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})';

// The grammar of RFC 9110 section 5.6.7, exactly: HTTP-date is case-sensitive
// and its separators are single spaces. Optional whitespace (OWS) may surround
// the field value.
const DELTA_SECONDS = /^[ \t]*(\d+)[ \t]*$/;
const IMF_FIXDATE = new RegExp(`^${DAY}, (\\d{2}) (${MONTHS}) (\\d{4}) ${TIME} GMT$`);
const RFC850_DATE = new RegExp(`^${DAY_LONG}, (\\d{2})-(${MONTHS})-(\\d{2}) ${TIME} GMT$`);
const ASCTIME_DATE = new RegExp(`^${DAY} (${MONTHS}) (\\d{2}| \\d) ${TIME} (\\d{4})$`);

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const monthFromMarch = (month + 9) % 12;
  const dayOfYear = Math.floor((153 * monthFromMarch + 2) / 5) + day - 1;
  const dayOfEra =
    yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}

/** The Gregorian year of an epoch-ms time (H. Hinnant's civil_from_days, year only). */
function yearOf(epochMs: number): number {
  const z = Math.floor(epochMs / DAY_MS) + 719_468;
  const era = Math.floor(z / 146_097);
  const dayOfEra = z - era * 146_097;
  const yearOfEra = Math.floor(
    (dayOfEra -
      Math.floor(dayOfEra / 1460) +
      Math.floor(dayOfEra / 36_524) -
      Math.floor(dayOfEra / 146_096)) /
      365,
  );
  const dayOfYear =
    dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const monthFromMarch = Math.floor((5 * dayOfYear + 2) / 153);
  return yearOfEra + era * 400 + (monthFromMarch >= 10 ? 1 : 0);
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) {
    const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
    return leap ? 29 : 28;
  }
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

interface DateParts {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

/** Epoch ms of the parts, or undefined when they name no real time. */
function toEpochMs(parts: DateParts): number | undefined {
  const { year, month, day, hour, minute, second } = parts;
  if (day < 1 || day > daysInMonth(year, month)) return undefined;
  // Second 60 is a leap second (RFC 9110 allows it); it lands on the next minute.
  if (hour > 23 || minute > 59 || second > 60) return undefined;
  return (
    daysFromCivil(year, month, day) * DAY_MS + hour * 3_600_000 + minute * 60_000 + second * 1000
  );
}

/**
 * RFC 9110: a two-digit year that appears to be more than 50 years in the
 * future is the most recent past year with those digits. So the year is the
 * latest one ending in `yy` that is not more than 50 years ahead of now.
 */
function resolveTwoDigitYear(
  yy: number,
  parts: Omit<DateParts, 'year'>,
  nowMs: number,
): number | undefined {
  const nowYear = yearOf(nowMs);
  const sameCentury = nowYear - (((nowYear % 100) + 100) % 100) + yy;
  const limitMs = nowMs + FIFTY_YEARS_MS;
  for (const year of [sameCentury + 100, sameCentury, sameCentury - 100]) {
    // Compared with the day clamped to 28, so that whether Feb 29 exists in a
    // candidate year does not change which century is picked.
    const approxMs = toEpochMs({ ...parts, year, day: Math.min(parts.day, 28) });
    if (approxMs !== undefined && approxMs <= limitMs) return toEpochMs({ ...parts, year });
  }
  return undefined;
}

/** The parts every format spells the same way, from the strings a regex matched. */
function clockParts(
  month: string | undefined,
  day: string | undefined,
  time: [string | undefined, string | undefined, string | undefined],
): Omit<DateParts, 'year'> {
  return {
    month: MONTH_INDEX.get(month ?? '') ?? 0,
    day: Number(day),
    hour: Number(time[0]),
    minute: Number(time[1]),
    second: Number(time[2]),
  };
}

/** Epoch ms of an HTTP-date in any of the three formats of RFC 9110, or undefined. */
function parseHttpDate(text: string, nowMs: number): number | undefined {
  let match = IMF_FIXDATE.exec(text);
  if (match) {
    const [, day, month, year, hour, minute, second] = match;
    return toEpochMs({ year: Number(year), ...clockParts(month, day, [hour, minute, second]) });
  }
  match = RFC850_DATE.exec(text);
  if (match) {
    const [, day, month, yy, hour, minute, second] = match;
    return resolveTwoDigitYear(Number(yy), clockParts(month, day, [hour, minute, second]), nowMs);
  }
  match = ASCTIME_DATE.exec(text);
  if (match) {
    const [, month, day, hour, minute, second, year] = match;
    return toEpochMs({ year: Number(year), ...clockParts(month, day, [hour, minute, second]) });
  }
  return undefined;
}

/**
 * The delay a Retry-After header asks for, in ms, or undefined for "no hint".
 * Accepts delta-seconds and the three HTTP-date formats of RFC 9110; a date in
 * the past is 0, and every delay is capped at `maxMs`. Whatever the header
 * holds, this never throws and never returns NaN, a negative number or more
 * than the cap (only invalid options throw, as the TypeError of a bug).
 */
export function parseRetryAfter(
  value: string | null | undefined,
  options: ParseRetryAfterOptions,
): number | undefined {
  const { nowMs } = options;
  const maxMs = options.maxMs ?? DEFAULT_MAX_RETRY_AFTER_MS;
  assertFiniteNumber('nowMs', nowMs);
  assertNonNegative('maxMs', maxMs);
  if (typeof value !== 'string') return undefined;

  const delta = DELTA_SECONDS.exec(value);
  if (delta) {
    // A huge digit string becomes a huge number or Infinity, never NaN; the cap absorbs both.
    return Math.min(maxMs, Number(delta[1]) * 1000);
  }
  const dateMs = parseHttpDate(value.replace(/^[ \t]+|[ \t]+$/g, ''), nowMs);
  if (dateMs === undefined || !Number.isFinite(dateMs)) return undefined;
  return Math.min(maxMs, Math.max(0, dateMs - nowMs));
}
