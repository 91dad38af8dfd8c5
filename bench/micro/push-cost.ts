// The cost of Engine.push(): 1,000,000 pushes of 100-byte bodies over 10,000 keys, into the
// memory outbox and into the SQLite outbox, beside a bare Map + min-heap doing the same
// bookkeeping (newest body per key, one due entry per key) in the same run. Rounds alternate
// the order of the variants; medians of µs/push are compared. Heap: heapUsed sampled after
// every burst (peak: garbage not yet collected included), and after a forced gc at the end of
// the push phase, once the sends it started have settled (retained); shown as absolute
// heapUsed and as growth over the heap after a forced gc before the variant started (run node
// with --expose-gc).
//
// What "push" measures: the engine is started on a ManualClock that is never advanced during
// the push phase, with the run mode's debounce (leading, 10 s) and a MemoryRemote. The first
// push of each key goes out at once (10,000 PUTs to the memory remote, in the timed phase);
// every later push of that key waits for the window, so it is written to the outbox and
// coalesced with the key's queued version. That is intake cost, not network cost.
//
// Run: npm run bench:micro:push [-- --rounds 3 --pushes 1000000 --keys 10000 --burst 1000]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Engine, MemoryOutboxStore, type OutboxStore } from '@upsync/core';
import { ManualClock, MemoryRemote } from '@upsync/core/testing';
import { SqliteOutboxStore } from '../../packages/node/src/outbox/sqlite-store.ts';
import {
  HeapPeak,
  MB,
  canForceGc,
  forceGc,
  heapUsed,
  isMain,
  isQuick,
  median,
  printTable,
  round,
  writeResult,
  type RunOptions,
} from './common.ts';

export type PushVariant = 'map+heap' | 'engine+memory' | 'engine+sqlite';

export interface PushCostOptions extends RunOptions {
  rounds?: number;
  pushes?: number;
  keys?: number;
  /** Pushes started together before awaiting them (a burst of writes). */
  burst?: number;
  bodyBytes?: number;
  /** Pushes for the SQLite variant (default: the same as `pushes`). */
  sqlitePushes?: number;
  variants?: readonly PushVariant[];
}

interface Sample {
  readonly usPerPush: number;
  readonly peakHeapMB: number;
  readonly retainedHeapMB: number;
  readonly absolutePeakHeapMB: number;
  readonly absoluteRetainedHeapMB: number;
  readonly notes: Record<string, number>;
}

const INTERVAL_MS = 10_000;
const scope = { remote: 'bench://micro', project: 'bench', principal: 'bench' };

/** A distinct 100-byte body for push `i` (each push brings new content). */
function bodyFor(i: number, bodyBytes: number): Uint8Array {
  const body = new Uint8Array(bodyBytes);
  body.fill(97);
  new DataView(body.buffer).setFloat64(0, i);
  return body;
}

/** The baseline: a Map of each key's newest body and a binary min-heap of due times. */
class MapHeap {
  readonly #entries = new Map<string, { body: Uint8Array; seq: number; dueMs: number }>();
  readonly #heapDue: number[] = [];
  readonly #heapKey: string[] = [];
  #seq = 0;

  push(key: string, body: Uint8Array, nowMs: number): void {
    const seq = ++this.#seq;
    const entry = this.#entries.get(key);
    if (entry) {
      // Coalesce: the newest body wins, the key keeps its place in the heap.
      entry.body = body;
      entry.seq = seq;
      return;
    }
    const dueMs = nowMs + INTERVAL_MS;
    this.#entries.set(key, { body, seq, dueMs });
    this.#heapPush(dueMs, key);
  }

  get size(): number {
    return this.#entries.size;
  }

  #heapPush(dueMs: number, key: string): void {
    const due = this.#heapDue;
    const keys = this.#heapKey;
    let i = due.length;
    due.push(dueMs);
    keys.push(key);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (due[parent]! <= dueMs) break;
      due[i] = due[parent]!;
      keys[i] = keys[parent]!;
      i = parent;
    }
    due[i] = dueMs;
    keys[i] = key;
  }
}

interface Plan {
  readonly pushes: number;
  readonly keys: number;
  readonly burst: number;
  readonly bodyBytes: number;
}

function runMapHeap(plan: Plan): Sample {
  forceGc();
  const before = heapUsed();
  const heap = new HeapPeak();
  const map = new MapHeap();
  const start = performance.now();
  for (let i = 0; i < plan.pushes; i++) {
    map.push(`k/${i % plan.keys}`, bodyFor(i, plan.bodyBytes), 0);
    if ((i + 1) % plan.burst === 0) heap.sample();
  }
  const elapsed = performance.now() - start;
  heap.sample();
  forceGc();
  const retained = heapUsed() - before;
  return {
    usPerPush: (elapsed * 1000) / plan.pushes,
    peakHeapMB: (heap.peak - before) / MB,
    retainedHeapMB: retained / MB,
    absolutePeakHeapMB: heap.peak / MB,
    absoluteRetainedHeapMB: (retained + before) / MB,
    notes: { keysHeld: map.size },
  };
}

async function runEngine(plan: Plan, kind: 'memory' | 'sqlite'): Promise<Sample> {
  const clock = new ManualClock();
  const dir = kind === 'sqlite' ? mkdtempSync(join(tmpdir(), 'upsync-micro-push-')) : undefined;
  const store: OutboxStore =
    dir === undefined
      ? new MemoryOutboxStore({ clock })
      : new SqliteOutboxStore({ path: join(dir, 'outbox.db'), clock });
  const remote = new MemoryRemote();
  try {
    forceGc();
    const before = heapUsed();
    const heap = new HeapPeak();
    const engine = new Engine({
      store,
      scope,
      remote,
      clock,
      settings: { leading: true, intervalMs: INTERVAL_MS },
      logger: { warn: () => {} },
    });
    await engine.start();
    const start = performance.now();
    for (let first = 0; first < plan.pushes; first += plan.burst) {
      const end = Math.min(first + plan.burst, plan.pushes);
      const receipts: Promise<unknown>[] = [];
      for (let i = first; i < end; i++) {
        receipts.push(
          engine.push(`k/${i % plan.keys}`, bodyFor(i, plan.bodyBytes), { knownNew: true }),
        );
      }
      await Promise.all(receipts);
      heap.sample();
    }
    const elapsed = performance.now() - start;
    // Sends the push phase started finish their microtask work (the clock does not move), so
    // what is left is what the engine keeps, not a snapshot of suspended calls.
    await clock.settle();
    await clock.settle();
    heap.sample();
    forceGc();
    const retained = heapUsed() - before;
    const stats = engine.stats.snapshot();
    const puts = remote.calls.filter((call) => call.method === 'PUT').length;
    await engine.close();
    return {
      usPerPush: (elapsed * 1000) / plan.pushes,
      peakHeapMB: (heap.peak - before) / MB,
      retainedHeapMB: retained / MB,
      absolutePeakHeapMB: heap.peak / MB,
      absoluteRetainedHeapMB: (retained + before) / MB,
      notes: { coalesced: stats.coalesced, putsDuringPushPhase: puts },
    };
  } finally {
    await store.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  }
}

export interface PushCostResult {
  readonly scenario: 'push-cost';
  readonly date: string;
  readonly quick: boolean;
  readonly gcExposed: boolean;
  readonly method: string;
  readonly plan: Plan & { rounds: number; sqlitePushes: number };
  readonly variants: Record<
    string,
    {
      usPerPush: number;
      peakHeapMB: number;
      retainedHeapMB: number;
      absolutePeakHeapMB: number;
      absoluteRetainedHeapMB: number;
      usPerPushSamples: number[];
      notes: Record<string, number>;
    }
  >;
  /** µs/push of each engine variant over the baseline's. */
  readonly ratios: Record<string, number>;
  readonly target: {
    readonly description: string;
    readonly memoryUsPerPush: number | null;
    /** heapUsed after a forced gc at the end of the push phase: what the engine keeps. */
    readonly memoryRetainedHeapMB: number | null;
    /** The highest heapUsed sampled, garbage V8 had not collected yet included. */
    readonly memoryPeakHeapMB: number | null;
    readonly met: boolean | null;
  };
}

export async function runPushCost(options: PushCostOptions = {}): Promise<PushCostResult> {
  const quick = options.quick ?? isQuick();
  const log = options.log ?? console.log;
  const rounds = options.rounds ?? (quick ? 1 : 3);
  const pushes = options.pushes ?? (quick ? 20_000 : 1_000_000);
  const plan: Plan = {
    pushes,
    keys: options.keys ?? (quick ? 1_000 : 10_000),
    burst: options.burst ?? 1_000,
    bodyBytes: options.bodyBytes ?? 100,
  };
  const sqlitePlan: Plan = { ...plan, pushes: options.sqlitePushes ?? pushes };
  const variants = options.variants ?? ['map+heap', 'engine+memory', 'engine+sqlite'];
  if (!canForceGc) log('note: no gc() (run node with --expose-gc): heap figures include garbage');

  const samples = new Map<PushVariant, Sample[]>();
  for (let r = 1; r <= rounds; r++) {
    // Alternate the order so warm-up and machine noise do not always favour one variant.
    const order = r % 2 ? [...variants] : [...variants].reverse();
    for (const variant of order) {
      const sample =
        variant === 'map+heap'
          ? runMapHeap(plan)
          : await runEngine(
              variant === 'engine+sqlite' ? sqlitePlan : plan,
              variant === 'engine+sqlite' ? 'sqlite' : 'memory',
            );
      const list = samples.get(variant) ?? [];
      list.push(sample);
      samples.set(variant, list);
      log(
        `round ${r} ${variant.padEnd(13)} ${sample.usPerPush.toFixed(3)} µs/push, ` +
          `peak +${sample.peakHeapMB.toFixed(1)} MB, retained +${sample.retainedHeapMB.toFixed(1)} MB`,
      );
    }
  }

  const summary: PushCostResult['variants'] = {};
  for (const [variant, list] of samples) {
    const last = list[list.length - 1]!;
    summary[variant] = {
      usPerPush: round(median(list.map((s) => s.usPerPush))),
      peakHeapMB: round(Math.max(...list.map((s) => s.peakHeapMB)), 1),
      retainedHeapMB: round(median(list.map((s) => s.retainedHeapMB)), 1),
      absolutePeakHeapMB: round(Math.max(...list.map((s) => s.absolutePeakHeapMB)), 1),
      absoluteRetainedHeapMB: round(Math.max(...list.map((s) => s.absoluteRetainedHeapMB)), 1),
      usPerPushSamples: list.map((s) => round(s.usPerPush)),
      notes: last.notes,
    };
  }
  const base = summary['map+heap']?.usPerPush;
  const ratios: Record<string, number> = {};
  for (const [variant, entry] of Object.entries(summary)) {
    if (variant !== 'map+heap' && base) ratios[variant] = round(entry.usPerPush / base, 1);
  }
  const memory = summary['engine+memory'];
  const result: PushCostResult = {
    scenario: 'push-cost',
    date: new Date().toISOString(),
    quick,
    gcExposed: canForceGc,
    method:
      'Engine.push(key, 100-byte body, { knownNew: true }) with the engine started (leading 10 s debounce) on a ManualClock never advanced during the push phase and a MemoryRemote: the first push of each key is sent at once, the rest are written to the outbox and coalesced per key (intake cost). Pushes go in bursts awaited together. Timed: from the first push to the receipts of the last burst. Heap: heapUsed sampled after each burst (peak, uncollected garbage included) and after a forced gc at the end of the push phase once the sends it started settled (retained, what the engine keeps); absolute and as growth over the heap after a forced gc before the variant.',
    plan: { ...plan, rounds, sqlitePushes: sqlitePlan.pushes },
    variants: summary,
    ratios,
    target: {
      description:
        'engine+memory: <= 2 µs/push, heap O(keys): heapUsed after gc at the end < 100 MB',
      memoryUsPerPush: memory?.usPerPush ?? null,
      memoryRetainedHeapMB: memory?.absoluteRetainedHeapMB ?? null,
      memoryPeakHeapMB: memory?.absolutePeakHeapMB ?? null,
      met: memory ? memory.usPerPush <= 2 && memory.absoluteRetainedHeapMB < 100 : null,
    },
  };

  log('');
  printTable(
    Object.entries(summary).map(([variant, entry]) => ({
      variant,
      'µs/push': entry.usPerPush,
      'x baseline': ratios[variant] ?? 1,
      'peak heap MB (+)': entry.peakHeapMB,
      'retained MB (+)': entry.retainedHeapMB,
      'peak heapUsed MB': entry.absolutePeakHeapMB,
      'after gc MB': entry.absoluteRetainedHeapMB,
    })),
    log,
  );
  log(
    `target (engine+memory <= 2 µs/push, heapUsed after gc < 100 MB): ${
      result.target.met === null ? 'not measured' : result.target.met ? 'met' : 'NOT met'
    }`,
  );
  writeResult(result, options.resultsPath);
  return result;
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string' },
      pushes: { type: 'string' },
      'sqlite-pushes': { type: 'string' },
      keys: { type: 'string' },
      burst: { type: 'string' },
      only: { type: 'string' },
      results: { type: 'string' },
    },
  });
  const num = (value: string | undefined): number | undefined =>
    value === undefined ? undefined : Number(value);
  const options: PushCostOptions = {};
  const set = <K extends keyof PushCostOptions>(key: K, value: PushCostOptions[K] | undefined) => {
    if (value !== undefined) options[key] = value;
  };
  set('rounds', num(values.rounds));
  set('pushes', num(values.pushes));
  set('sqlitePushes', num(values['sqlite-pushes']));
  set('keys', num(values.keys));
  set('burst', num(values.burst));
  set('variants', values.only?.split(',') as PushVariant[] | undefined);
  set('resultsPath', values.results);
  await runPushCost(options);
}
