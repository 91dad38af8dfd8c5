// The final report of sync and run (../print-report.ts).
import type { ReportedError } from '@upsync/core';
import { describe, expect, it } from 'vitest';
import { captureIo } from '../e2e-helpers.ts';
import { groupErrors, printReport, verdictLine, type CliReport } from '../print-report.ts';

function report(overrides: Partial<CliReport> = {}): CliReport {
  const none = { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0, network: 0 };
  return {
    created: 120,
    updated: 0,
    deleted: 0,
    skipped: 180,
    errored: 0,
    timedOut: 0,
    elapsedMs: 4_200,
    attempted: 300,
    inProgress: 0,
    deadLettered: 0,
    coalesced: 0,
    requests: { total: 121, byStatus: { ...none, '2xx': 121 }, byMethod: {} },
    retries: 0,
    backoffMs: 0,
    limiterWaitMs: 0,
    bytesSent: 1_000,
    itemsPerSec: 30,
    checked: true,
    invariantError: null,
    errors: [],
    paused: null,
    listing: 'loaded',
    durationMs: 4_200,
    files: { read: 120, bytesRead: 1_000, cached: 180 },
    left: { pending: 0, deadLetters: 0 },
    ...overrides,
  };
}

const error = (key: string, over: Partial<ReportedError> = {}): ReportedError => ({
  key,
  seq: 1,
  outcome: 'errored',
  deadLettered: true,
  status: 400,
  message: 'HTTP 400: the body is not valid JSON',
  ...over,
});

describe('the final report', () => {
  it('says in one line that everything arrived', () => {
    expect(verdictLine(report())).toEqual({
      ok: true,
      text: '✔ everything arrived: 300 items (120 created, 180 already there)',
    });
    expect(verdictLine(report({ attempted: 0, created: 0, skipped: 0 })).text).toBe(
      '✔ nothing to send: the remote has it all',
    );
  });

  it('never says all is well for a pass that was stopped, even with nothing taken up yet', () => {
    expect(verdictLine(report({ attempted: 0, created: 0, skipped: 0, stopped: true }))).toEqual({
      ok: false,
      text: '✘ stopped before anything was sent; the next sync does it all',
    });
    expect(
      verdictLine(report({ stopped: true, created: 20, skipped: 10, timedOut: 270 })).text,
    ).toBe('✘ stopped: 30 of 300 items arrived, 270 did not; the next sync does the rest');
  });

  it('groups errors by cause with the first keys, and says what is left and how to retry it', () => {
    const errors = [
      ...['a', 'b', 'c', 'd', 'e'].map((key) => error(`bad/${key}.json`)),
      error('big.bin', { status: 413, message: 'too large' }),
      ...['x', 'y'].map((key) =>
        error(key, { outcome: 'timedOut', deadLettered: false, status: null, message: 'shutdown' }),
      ),
    ];
    expect(groupErrors(errors).map((g) => [g.state, g.cause, g.keys.length])).toEqual([
      ['dead-lettered', 'HTTP 400: the body is not valid JSON', 5],
      ['pending', 'shutdown', 2],
      ['dead-lettered', 'HTTP 413: too large', 1],
    ]);
    const io = captureIo();
    const failed = report({
      created: 100,
      errored: 6,
      deadLettered: 6,
      timedOut: 2,
      skipped: 192,
      errors,
      left: { pending: 2, deadLetters: 6 },
    });
    printReport('sync', failed, { json: false }, io);
    const lines = io.stderrText.trimEnd().split('\n');
    expect(lines.slice(1)).toEqual([
      'upsync sync: dead-lettered: HTTP 400: the body is not valid JSON (5 items): bad/a.json, bad/b.json, bad/c.json and 2 more',
      'upsync sync: pending: shutdown (2 items): x, y',
      'upsync sync: dead-lettered: HTTP 413: too large (1 item): big.bin',
      '✘ 8 of 300 items did not arrive (6 dead-lettered, 2 not sent in time)',
      '  2 items pending in the outbox: run "upsync sync" again to send them',
      '  6 items in the dead-letter queue: "upsync dlq retry" sends them again once fixed',
    ]);
    expect(lines[0]).toMatch(/^upsync sync: 300 items: 100 created, .* 2 timed out;/);
  });

  it('--quiet: the errors and the verdict only; --json: the report alone on stdout', () => {
    const quiet = captureIo();
    printReport(
      'run',
      report({ errored: 1, deadLettered: 1, errors: [error('k')] }),
      { json: false, quiet: true },
      quiet,
    );
    expect(quiet.stderrText).toBe(
      [
        'upsync run: dead-lettered: HTTP 400: the body is not valid JSON (1 item): k',
        '✘ 1 of 300 items did not arrive (1 dead-lettered)',
        '',
      ].join('\n'),
    );
    const json = captureIo();
    printReport('sync', report(), { json: true }, json);
    expect(json.stderrText).toBe('');
    expect(JSON.parse(json.stdoutText)).toMatchObject({ attempted: 300, left: { pending: 0 } });
  });

  it('colors the verdict only when asked', () => {
    const io = captureIo();
    printReport('sync', report(), { json: false, color: true }, io);
    expect(io.stderrText).toContain('\u001B[32m✔ everything arrived');
    const plain = captureIo();
    printReport('sync', report(), { json: false }, plain);
    expect(plain.stderrText).not.toContain('\u001B');
  });
});
