// Smoke test of the micro benchmarks in quick mode: they run, print a table and write results
// of the expected shape. Timings are not checked (they belong to the benchmarks); the debounce
// scenario is a request count on a manual clock, so its exact 7 PUTs / 0 HEAD is.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runDebounce } from './debounce.ts';
import { runPushCost } from './push-cost.ts';
import { runSqliteOutbox } from './sqlite-outbox.ts';

const dir = mkdtempSync(join(tmpdir(), 'upsync-micro-test-'));
const resultsPath = join(dir, 'micro.json');
const lines: string[] = [];
const log = (line: string): void => {
  lines.push(line);
};

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function saved(scenario: string): Record<string, unknown> {
  const file = JSON.parse(readFileSync(resultsPath, 'utf8')) as {
    scenarios: Record<string, Record<string, unknown>>;
  };
  const entry = file.scenarios[scenario];
  if (!entry) throw new Error(`${scenario} is not in ${resultsPath}`);
  return entry;
}

describe('micro benchmarks (quick mode)', () => {
  it('debounce: 1,200 changes of one key under run send 7 PUTs and no HEAD', async () => {
    const result = await runDebounce({ quick: true, resultsPath, log });
    expect(result).toMatchObject({
      scenario: 'debounce',
      changes: 1200,
      puts: 7,
      heads: 0,
      otherRequests: 0,
      lastContentArrived: true,
      met: true,
    });
    expect(result.putTimesMs).toEqual([0, 10_000, 20_000, 30_000, 40_000, 50_000, 60_000]);
    expect(saved('debounce')).toMatchObject({ puts: 7, heads: 0 });
    expect(lines.join('\n')).toMatch(/1200\s+7\s+0/);
  });

  it('debounce: counts what a shorter debounce sends', async () => {
    const result = await runDebounce({ quick: true, resultsPath, log, intervalMs: 20_000 });
    expect(result).toMatchObject({ puts: 4, heads: 0, expected: { puts: 4, heads: 0 }, met: true });
  });

  it('push-cost: measures every variant and keeps the other scenarios in the file', async () => {
    const result = await runPushCost({
      quick: true,
      resultsPath,
      log,
      pushes: 2_000,
      keys: 100,
      burst: 200,
    });
    expect(Object.keys(result.variants).sort()).toEqual([
      'engine+memory',
      'engine+sqlite',
      'map+heap',
    ]);
    for (const entry of Object.values(result.variants)) {
      expect(entry.usPerPush).toBeGreaterThan(0);
      expect(entry.usPerPushSamples).toHaveLength(1);
    }
    // Each key's first push went out at once and its second waits in the queue, where the
    // other 18 replaced it in turn (the clock never moved): 100 × 18 coalesced.
    expect(result.variants['engine+memory']?.notes).toEqual({
      coalesced: 1_800,
      putsDuringPushPhase: 100,
    });
    expect(result.ratios['engine+memory']).toBeGreaterThan(0);
    expect(typeof result.target.met).toBe('boolean');
    expect(saved('push-cost')).toMatchObject({ scenario: 'push-cost', quick: true });
    expect(saved('debounce')).toMatchObject({ scenario: 'debounce' });
  });

  it('sqlite-outbox: measures the store beside the bare loops', async () => {
    const result = await runSqliteOutbox({
      quick: true,
      resultsPath,
      log,
      pushes: 2_000,
      perPushPushes: 50,
      burst: 500,
    });
    expect(Object.keys(result.variants).sort()).toEqual([
      'bare-batched',
      'bare-tx-per-push',
      'outbox-group-commit',
    ]);
    expect(result.ratios['bare-batched']).toBe(1);
    expect(result.variants['outbox-group-commit']?.pushesPerSec).toBeGreaterThan(0);
    expect(saved('sqlite-outbox')).toMatchObject({ scenario: 'sqlite-outbox' });
    expect(lines.some((line) => line.startsWith('target (outbox >= 50,000'))).toBe(true);
  });
});
