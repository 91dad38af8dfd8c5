// The run mode's debounce as a request count: one new key written 20 times a second for 60 s
// under the run mode's settings (leading, 10 s; pushes known new, as the folder watcher makes
// them), on a ManualClock with a MemoryRemote. Expected: 7 PUTs (t = 0, 10, ..., 60 s) and
// no HEAD for the 1,200 changes, and the remote ends with the last content.
//
// Run: npm run bench:micro:debounce
import {
  DEFAULT_RESWEEP_MS,
  Engine,
  MemoryOutboxStore,
  type EngineReport,
  type OutboxStore,
} from '@upsync/core';
import { ManualClock, MemoryRemote } from '@upsync/core/testing';
import { isMain, isQuick, printTable, writeResult, type RunOptions } from './common.ts';

export interface DebounceOptions extends RunOptions {
  /** Writes per second; default 20. */
  ratePerSec?: number;
  /** How long the key is written; default 60 s. */
  durationMs?: number;
  /** The debounce interval; default 10 s (the run mode's default). */
  intervalMs?: number;
  /** The outbox; default a MemoryOutboxStore on the bench's clock. */
  store?: (clock: ManualClock) => OutboxStore;
}

export interface DebounceResult {
  readonly scenario: 'debounce';
  readonly date: string;
  readonly quick: boolean;
  readonly method: string;
  readonly changes: number;
  readonly puts: number;
  readonly heads: number;
  readonly otherRequests: number;
  readonly expected: { readonly puts: number; readonly heads: number };
  readonly lastContentArrived: boolean;
  readonly putTimesMs: number[];
  readonly coalesced: number;
  readonly met: boolean;
}

const KEY = 'notes/today.md';
const scope = { remote: 'bench://micro', project: 'bench', principal: 'bench' };

export async function runDebounce(options: DebounceOptions = {}): Promise<DebounceResult> {
  const quick = options.quick ?? isQuick();
  const log = options.log ?? console.log;
  const ratePerSec = options.ratePerSec ?? 20;
  const durationMs = options.durationMs ?? 60_000;
  const intervalMs = options.intervalMs ?? 10_000;
  const stepMs = 1000 / ratePerSec;
  const changes = Math.round((durationMs / 1000) * ratePerSec);

  const clock = new ManualClock();
  const store = options.store?.(clock) ?? new MemoryOutboxStore({ clock });
  const remote = new MemoryRemote();
  const putTimesMs: number[] = [];
  const engine = new Engine({
    store,
    scope,
    remote,
    clock,
    settings: { leading: true, intervalMs },
    resweepMs: DEFAULT_RESWEEP_MS,
    logger: { warn: (message) => log(`engine: ${message}`) },
  });
  engine.on('sending', () => putTimesMs.push(clock.now()));
  let report: EngineReport;
  let last = '';
  try {
    await engine.start();
    for (let i = 0; i < changes; i++) {
      last = `version ${i + 1} of ${KEY}\n`;
      await engine.push(KEY, last, { knownNew: true });
      await clock.advanceTo(Math.round((i + 1) * stepMs));
    }
    // The window opened by the send before the last change ends at `durationMs`: advancing to
    // it lets the pacing (not a flush) send the last change.
    await clock.advanceTo(durationMs + intervalMs);
    report = await engine.shutdown();
  } finally {
    await store.close();
  }

  const count = (method: string): number =>
    remote.calls.filter((call) => call.method === method).length;
  const puts = count('PUT');
  const heads = count('HEAD');
  const otherRequests = remote.calls.length - puts - heads;
  const expectedPuts = Math.floor(durationMs / intervalMs) + 1;
  const arrived = remote.applied.at(-1)?.text === last;
  const met = puts === expectedPuts && heads === 0 && otherRequests === 0 && arrived;
  const result: DebounceResult = {
    scenario: 'debounce',
    date: new Date().toISOString(),
    // Quick mode runs the same scenario: it is a count on a simulated clock and takes a moment.
    quick,
    method: `One key written ${ratePerSec}/s for ${durationMs / 1000} s with Engine settings { leading: true, intervalMs: ${intervalMs} } and pushes known new (as upsync run makes them), on a ManualClock, remote = MemoryRemote counting requests.`,
    changes,
    puts,
    heads,
    otherRequests,
    expected: { puts: expectedPuts, heads: 0 },
    lastContentArrived: arrived,
    putTimesMs,
    coalesced: report.coalesced,
    met,
  };
  printTable(
    [
      {
        changes,
        PUT: puts,
        HEAD: heads,
        other: otherRequests,
        expected: `${expectedPuts} PUT / 0 HEAD`,
        'last arrived': arrived ? 'yes' : 'no',
        result: met ? 'met' : 'NOT met',
      },
    ],
    log,
  );
  log(`PUTs at ${putTimesMs.map((ms) => `${ms / 1000}s`).join(', ')}`);
  writeResult(result, options.resultsPath);
  return result;
}

if (isMain(import.meta.url)) {
  await runDebounce();
}
