import picocolors from 'picocolors';
import { describe, expect, it } from 'vitest';
import {
  clientLine,
  GLOSSARY,
  glossaryText,
  serverLine,
  type ReportNumbers,
} from './demo-report.ts';
import type { StepTally } from './demo-server.ts';

const numbers = (changes: Partial<ReportNumbers> = {}): ReportNumbers => ({
  created: 298,
  updated: 1,
  skipped: 1,
  coalesced: 4,
  retries: 27,
  errored: 0,
  timedOut: 0,
  ...changes,
});

describe('clientLine', () => {
  it("names the report's numbers in the summary's order, leaving out zero timeouts and errors", () => {
    expect(clientLine(numbers())).toBe(
      '298 created, 1 updated, 1 skipped, 4 coalesced, 27 retries',
    );
  });

  it('names timeouts and errors when there were some', () => {
    expect(clientLine(numbers({ created: 290, timedOut: 7, errored: 3 }))).toBe(
      '290 created, 1 updated, 1 skipped, 4 coalesced, 27 retries, 7 timed out, 3 errored',
    );
  });

  it("ignores the report's other fields, and has nothing to say without a report", () => {
    const report = { ...numbers({ coalesced: 9 }), requests: { total: 318 }, backoffMs: 1200 };
    expect(clientLine(report)).toContain('9 coalesced');
    expect(clientLine(undefined)).toBeUndefined();
  });
});

describe('serverLine', () => {
  const tally = (byStatus: [number, number][]): StepTally => ({
    requests: byStatus.reduce((sum, [, n]) => sum + n, 0),
    byStatus: new Map(byStatus),
    storedPuts: new Map(),
    puts: 0,
  });

  it('names the refusals the server answered', () => {
    expect(
      serverLine(
        tally([
          [201, 300],
          [429, 8],
          [503, 4],
        ]),
      ),
    ).toBe('the server answered 312 requests: 8 × 429, 4 × 503');
    expect(serverLine(tally([[200, 1]]))).toBe('the server answered 1 request, none refused');
  });
});

describe('glossaryText', () => {
  it('has one line for each number of the report and points to --help', () => {
    const text = glossaryText(picocolors.createColors(false));
    for (const term of [
      'created',
      'updated',
      'skipped',
      'coalesced',
      'retries',
      '429s',
      '503s',
      'backoff',
    ]) {
      expect(GLOSSARY.map(([name]) => name)).toContain(term);
      expect(text).toMatch(new RegExp(`^  ${term} +\\S`, 'm'));
    }
    expect(text).toContain('upsync sync --help');
  });
});
