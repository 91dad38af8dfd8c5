import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_RETRY_AFTER_MS, parseRetryAfter } from './retry-after.ts';

// Wednesday, 15 January 2025, 12:00:00 UTC.
const NOW_MS = Date.UTC(2025, 0, 15, 12, 0, 0);
const UNCAPPED = Number.MAX_VALUE;

const parse = (value: string | null | undefined, nowMs = NOW_MS, maxMs?: number) =>
  parseRetryAfter(value, maxMs === undefined ? { nowMs } : { nowMs, maxMs });

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const DAYS_LONG = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n: number, width = 2): string => String(n).padStart(width, '0');
const time = (d: Date): string =>
  `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;

function imfFixdate(d: Date): string {
  return `${DAYS[d.getUTCDay()]}, ${pad(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]} ${pad(d.getUTCFullYear(), 4)} ${time(d)} GMT`;
}
function rfc850Date(d: Date): string {
  return `${DAYS_LONG[d.getUTCDay()]}, ${pad(d.getUTCDate())}-${MONTHS[d.getUTCMonth()]}-${pad(d.getUTCFullYear() % 100)} ${time(d)} GMT`;
}
function asctimeDate(d: Date): string {
  return `${DAYS[d.getUTCDay()]} ${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${time(d)} ${pad(d.getUTCFullYear(), 4)}`;
}

describe('parseRetryAfter: delta-seconds', () => {
  it('reads whole seconds, with surrounding whitespace', () => {
    expect(parse('120')).toBe(120_000);
    expect(parse('0')).toBe(0);
    expect(parse(' 5 ')).toBe(5_000);
    expect(parse('\t7\t')).toBe(7_000);
    expect(parse('0005')).toBe(5_000);
  });

  it('caps at 5 minutes by default, and at maxMs when given', () => {
    expect(DEFAULT_MAX_RETRY_AFTER_MS).toBe(300_000);
    expect(parse('300')).toBe(300_000);
    expect(parse('301')).toBe(300_000);
    expect(parse('60', NOW_MS, 10_000)).toBe(10_000);
    expect(parse('60', NOW_MS, 0)).toBe(0);
  });

  it('caps huge digit strings instead of overflowing', () => {
    expect(parse('9'.repeat(20))).toBe(300_000);
    expect(parse('9'.repeat(400))).toBe(300_000); // Number() of this is Infinity
    expect(parse(`${'0'.repeat(400)}3`)).toBe(3_000);
  });

  it.each([
    ['-5'],
    ['1.5'],
    ['garbage'],
    [''],
    ['   '],
    ['+5'],
    ['5s'],
    ['1e3'],
    ['0x10'],
    ['5 5'],
    ['\u00a05'],
    ['\uff15'], // fullwidth digit five
    ['Infinity'],
    ['NaN'],
  ])('gives no hint for %j', (value) => {
    expect(parse(value)).toBeUndefined();
  });

  it('gives no hint for null, undefined and non-strings', () => {
    expect(parse(null)).toBeUndefined();
    expect(parse(undefined)).toBeUndefined();
    expect(parse(5 as unknown as string)).toBeUndefined();
  });
});

describe('parseRetryAfter: HTTP-date', () => {
  it('reads an IMF-fixdate', () => {
    expect(parse('Wed, 15 Jan 2025 12:00:30 GMT')).toBe(30_000);
    expect(parse('  Wed, 15 Jan 2025 12:01:00 GMT\t')).toBe(60_000);
  });

  it('reads an RFC 850 date', () => {
    expect(parse('Wednesday, 15-Jan-25 12:00:45 GMT')).toBe(45_000);
  });

  it('reads an asctime date, with a space-padded or two-digit day', () => {
    const jan5 = Date.UTC(2025, 0, 5, 12, 0, 0);
    expect(parse('Sun Jan  5 12:00:10 2025', jan5)).toBe(10_000);
    expect(parse('Sun Jan 05 12:00:20 2025', jan5)).toBe(20_000);
    expect(parse('Wed Jan 15 12:02:00 2025')).toBe(120_000);
  });

  it('gives 0 for the RFC examples, which are in the past', () => {
    expect(parse('Sun, 06 Nov 1994 08:49:37 GMT')).toBe(0);
    expect(parse('Sunday, 06-Nov-94 08:49:37 GMT')).toBe(0);
    expect(parse('Sun Nov  6 08:49:37 1994')).toBe(0);
  });

  it('caps a date ten years ahead', () => {
    expect(parse('Mon, 15 Jan 2035 12:00:00 GMT')).toBe(300_000);
    expect(parse('Mon, 15 Jan 2035 12:00:00 GMT', NOW_MS, UNCAPPED)).toBe(
      Date.UTC(2035, 0, 15, 12) - NOW_MS,
    );
  });

  it('measures from nowMs, including a fractional one', () => {
    expect(parse('Wed, 15 Jan 2025 12:00:30 GMT', NOW_MS + 10_000)).toBe(20_000);
    expect(parse('Wed, 15 Jan 2025 12:00:30 GMT', NOW_MS + 0.5)).toBe(29_999.5);
  });

  it('takes a two-digit year more than 50 years ahead as the past century', () => {
    // From 2025: 74 is 2074 (49 years ahead), 76 would be 2076 (51 years), so 1976.
    expect(parse('Monday, 15-Jan-74 12:00:00 GMT', NOW_MS, UNCAPPED)).toBe(
      Date.UTC(2074, 0, 15, 12) - NOW_MS,
    );
    expect(parse('Thursday, 15-Jan-76 12:00:00 GMT', NOW_MS, UNCAPPED)).toBe(0);
    // From 2090: 05 is 2105 (15 years ahead), not 2005.
    const in2090 = Date.UTC(2090, 5, 1);
    expect(parse('Monday, 01-Jun-05 00:00:00 GMT', in2090, UNCAPPED)).toBe(
      Date.UTC(2105, 5, 1) - in2090,
    );
  });

  it('checks Feb 29 against the century the two-digit year resolves to', () => {
    // From 2040, 00 is 2000 (2100 is 60 years ahead): a leap year, in the past.
    expect(parse('Tuesday, 29-Feb-00 00:00:00 GMT', Date.UTC(2040, 0, 1))).toBe(0);
    // From 2060, 00 is 2100: not a leap year, so Feb 29 does not exist.
    expect(parse('Monday, 29-Feb-00 00:00:00 GMT', Date.UTC(2060, 0, 1))).toBeUndefined();
    const in2060 = Date.UTC(2060, 0, 1);
    expect(parse('Sunday, 28-Feb-00 00:00:00 GMT', in2060, UNCAPPED)).toBe(
      Date.UTC(2100, 1, 28) - in2060,
    );
  });

  it('accepts a leap second, and a weekday that does not match the date', () => {
    expect(parse('Wed, 15 Jan 2025 12:00:60 GMT')).toBe(60_000);
    // The cap and the fallback to backoff make a sloppy weekday harmless.
    expect(parse('Mon, 15 Jan 2025 12:00:30 GMT')).toBe(30_000);
  });

  it.each([
    ['Sat, 30 Feb 2025 12:00:00 GMT', 'Feb 30'],
    ['Sat, 29 Feb 2025 12:00:00 GMT', 'Feb 29 in a common year'],
    ['Sun, 31 Apr 2025 12:00:00 GMT', 'Apr 31'],
    ['Wed, 00 Jan 2025 12:00:00 GMT', 'day 0'],
    ['Wed, 32 Jan 2025 12:00:00 GMT', 'day 32'],
    ['Wed, 15 Jan 2025 24:00:00 GMT', 'hour 24'],
    ['Wed, 15 Jan 2025 12:60:00 GMT', 'minute 60'],
    ['Wed, 15 Jan 2025 12:00:61 GMT', 'second 61'],
    ['Wed, 15 Foo 2025 12:00:00 GMT', 'an unknown month'],
    ['Xyz, 15 Jan 2025 12:00:00 GMT', 'an unknown day name'],
    ['wed, 15 jan 2025 12:00:30 GMT', 'lower case (HTTP-date is case-sensitive)'],
    ['Wed, 15 Jan 2025 12:00:30 UTC', 'a zone other than GMT'],
    ['Wed, 15 Jan 2025 12:00:30', 'no zone'],
    ['Wed, 15 Jan 2025 12:00:30 GMT+1', 'trailing text'],
    ['Wed,  15 Jan 2025 12:00:30 GMT', 'a double space'],
    ['Wed, 5 Jan 2025 12:00:30 GMT', 'a one-digit day in an IMF-fixdate'],
    ['Wed, 15 Jan 25 12:00:30 GMT', 'a two-digit year in an IMF-fixdate'],
    ['Wed, 15 Jan 2025 2:00:30 GMT', 'a one-digit hour'],
    ['Wednesday, 15 Jan 2025 12:00:30 GMT', 'a long day name in an IMF-fixdate'],
    ['Wed, 15-Jan-25 12:00:30 GMT', 'a short day name in an RFC 850 date'],
    ['Wednesday, 15-Jan-2025 12:00:30 GMT', 'a four-digit year in an RFC 850 date'],
    ['Sun Jan 5 12:00:10 2025', 'a one-digit asctime day without its padding space'],
    ['Sun Jan  5 12:00:10 25', 'a two-digit asctime year'],
    ['Sun Jan  5 12:00:10 2025 GMT', 'a zone after an asctime date'],
    ['2025-01-15T12:00:30Z', 'ISO 8601'],
    ['Jan 15 2025', 'a loose date Date.parse would take'],
    ['Wed Jan 15 2025 12:00:30 GMT+0000', "Date's own toString"],
  ])('gives no hint for %j (%s)', (value) => {
    expect(parse(value)).toBeUndefined();
  });

  it('refuses bad options with a TypeError', () => {
    expect(() => parseRetryAfter('5', { nowMs: Number.NaN })).toThrow(/nowMs.*NaN/);
    expect(() => parseRetryAfter('5', { nowMs: 0, maxMs: -1 })).toThrow(/maxMs.*-1/);
    expect(() => parseRetryAfter('5', { nowMs: 0, maxMs: Number.POSITIVE_INFINITY })).toThrow(
      TypeError,
    );
  });
});

describe('parseRetryAfter properties', () => {
  const nowMs = fc.oneof(
    fc.date({ noInvalidDate: true }).map((d) => d.getTime()),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
  );
  const dateNowMs = fc.date({ noInvalidDate: true }).map((d) => d.getTime());
  const maxMs = fc.oneof(fc.constant(undefined), fc.integer({ min: 0, max: 10_000_000 }));
  const dateLike = fc
    .tuple(
      fc.constantFrom(...DAYS, ...DAYS_LONG, 'Xyz', ''),
      fc.constantFrom(', ', ' ', ','),
      fc.stringMatching(/^\d{1,3}$/),
      fc.constantFrom(' ', '-', '  '),
      fc.constantFrom(...MONTHS, 'Foo'),
      fc.constantFrom(' ', '-'),
      fc.stringMatching(/^\d{1,5}$/),
      fc.stringMatching(/^ \d{1,2}:\d{1,2}:\d{1,2}$/),
      fc.constantFrom(' GMT', '', ' UTC'),
    )
    .map((parts) => parts.join(''));
  const anyText = fc.oneof(
    fc.string(),
    fc.string({ unit: 'binary' }),
    fc.stringMatching(/^[ \t]*\d*[ \t]*$/),
    fc.stringMatching(/^-?\d+(\.\d+)?$/),
    dateLike,
  );

  it('never throws and never gives NaN, a negative delay or more than the cap', () => {
    fc.assert(
      fc.property(anyText, nowMs, maxMs, (value, now, max) => {
        const cap = max ?? DEFAULT_MAX_RETRY_AFTER_MS;
        const delayMs = parse(value, now, max);
        if (delayMs === undefined) return;
        expect(Number.isFinite(delayMs)).toBe(true);
        expect(delayMs).toBeGreaterThanOrEqual(0);
        expect(delayMs).toBeLessThanOrEqual(cap);
      }),
      { numRuns: 5000 },
    );
  });

  it('delta-seconds of any length give min(cap, seconds * 1000)', () => {
    fc.assert(
      fc.property(fc.nat(), fc.stringMatching(/^[ \t]*$/), maxMs, (seconds, space, max) => {
        const cap = max ?? DEFAULT_MAX_RETRY_AFTER_MS;
        expect(parse(`${space}${seconds}${space}`, NOW_MS, max)).toBe(
          Math.min(cap, seconds * 1000),
        );
      }),
    );
    fc.assert(
      fc.property(fc.stringMatching(/^\d{1,600}$/), (digits) => {
        const delayMs = parse(digits);
        expect(delayMs).toBe(Math.min(300_000, Number(digits) * 1000));
      }),
    );
  });

  const date = fc.date({
    min: new Date(Date.UTC(1900, 0, 1)),
    max: new Date(Date.UTC(2200, 0, 1)),
    noInvalidDate: true,
  });

  it('every valid IMF-fixdate and asctime date gives its distance from now (Date.UTC oracle)', () => {
    fc.assert(
      fc.property(date, dateNowMs, (d, now) => {
        const expected = Math.max(0, Math.floor(d.getTime() / 1000) * 1000 - now);
        expect(parse(imfFixdate(d), now, UNCAPPED)).toBe(expected);
        expect(parse(asctimeDate(d), now, UNCAPPED)).toBe(expected);
        expect(parse(imfFixdate(d), now)).toBe(Math.min(300_000, expected));
      }),
      { numRuns: 2000 },
    );
  });

  it('every valid RFC 850 date within 49 years of now resolves to its own century', () => {
    const yearMs = 365.2425 * 86_400_000;
    fc.assert(
      fc.property(
        fc
          .date({
            min: new Date(Date.UTC(1950, 0, 1)),
            max: new Date(Date.UTC(2300, 0, 1)),
            noInvalidDate: true,
          })
          .map((d) => d.getTime()),
        fc.double({ min: -49, max: 49, noNaN: true }),
        (now, years) => {
          const d = new Date(Math.floor((now + years * yearMs) / 1000) * 1000);
          expect(parse(rfc850Date(d), now, UNCAPPED)).toBe(Math.max(0, d.getTime() - now));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('a later date never gives a shorter delay', () => {
    fc.assert(
      fc.property(date, date, (a, b) => {
        const [early, late] = a <= b ? [a, b] : [b, a];
        expect(parse(imfFixdate(late), NOW_MS, UNCAPPED)).toBeGreaterThanOrEqual(
          parse(imfFixdate(early), NOW_MS, UNCAPPED) ?? Number.NaN,
        );
      }),
    );
  });
});
