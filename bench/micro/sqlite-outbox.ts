// Durable appends to the SQLite outbox when pushes arrive in bursts (group commit), beside a
// bare node:sqlite loop in the same run: the same durability (WAL, synchronous=FULL), one
// transaction per batch of upserts, and one transaction per push. Each burst is `burst`
// appends started together and awaited together; keys cycle over `keys`. Rounds alternate
// the order of the variants; the medians of pushes/s are compared.
//
// Run: npm run bench:micro:sqlite [-- --rounds 3 --pushes 200000 --burst 1000]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { parseArgs } from 'node:util';
import { randomIdempotencyKey } from '@upsync/core';
import { SqliteOutboxStore } from '../../packages/node/src/outbox/sqlite-store.ts';
import {
  isMain,
  isQuick,
  median,
  printTable,
  round,
  writeResult,
  type RunOptions,
} from './common.ts';

export type SqliteVariant = 'bare-batched' | 'outbox-group-commit' | 'bare-tx-per-push';

export interface SqliteOutboxOptions extends RunOptions {
  rounds?: number;
  /** Appends per variant and round (the per-push-transaction variant uses `perPushPushes`). */
  pushes?: number;
  perPushPushes?: number;
  burst?: number;
  keys?: number;
  bodyBytes?: number;
  variants?: readonly SqliteVariant[];
}

const scope = { remote: 'bench://micro', project: 'bench', principal: 'bench' };
// The store does not check digests; every variant writes the same 64 hex characters.
const DIGEST = 'ab'.repeat(32);

function bodyFor(i: number, bodyBytes: number): Uint8Array {
  const body = new Uint8Array(bodyBytes);
  body.fill(97);
  new DataView(body.buffer).setFloat64(0, i);
  return body;
}

function openBare(path: string): DatabaseSync {
  const db = new DatabaseSync(path);
  db.exec('PRAGMA journal_mode = WAL');
  db.exec('PRAGMA synchronous = FULL');
  db.exec(`CREATE TABLE pending (
    key TEXT PRIMARY KEY, seq INTEGER NOT NULL, digest TEXT NOT NULL, size INTEGER NOT NULL,
    body BLOB NOT NULL, idem_key TEXT NOT NULL, created_ms INTEGER NOT NULL
  )`);
  return db;
}

interface Plan {
  readonly pushes: number;
  readonly burst: number;
  readonly keys: number;
  readonly bodyBytes: number;
}

/** The bare loop: each burst is one transaction of upserts (newest body per key). */
function bareUpserts(path: string, plan: Plan, perPush: boolean): number {
  const db = openBare(path);
  try {
    const upsert = db.prepare(
      `INSERT INTO pending (key, seq, digest, size, body, idem_key, created_ms)
       VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET seq = excluded.seq, digest = excluded.digest,
         size = excluded.size, body = excluded.body, idem_key = excluded.idem_key,
         created_ms = excluded.created_ms`,
    );
    const write = (i: number): void => {
      upsert.run(
        `k/${i % plan.keys}`,
        i + 1,
        DIGEST,
        plan.bodyBytes,
        bodyFor(i, plan.bodyBytes),
        randomIdempotencyKey(),
        Date.now(),
      );
    };
    const start = performance.now();
    if (perPush) {
      for (let i = 0; i < plan.pushes; i++) {
        db.exec('BEGIN IMMEDIATE');
        write(i);
        db.exec('COMMIT');
      }
    } else {
      for (let first = 0; first < plan.pushes; first += plan.burst) {
        const end = Math.min(first + plan.burst, plan.pushes);
        db.exec('BEGIN IMMEDIATE');
        for (let i = first; i < end; i++) write(i);
        db.exec('COMMIT');
      }
    }
    return plan.pushes / ((performance.now() - start) / 1000);
  } finally {
    db.close();
  }
}

/** SqliteOutboxStore.append, `burst` at a time: group commit makes each burst one transaction. */
async function outboxAppends(path: string, plan: Plan): Promise<number> {
  const store = new SqliteOutboxStore({ path });
  try {
    const start = performance.now();
    for (let first = 0; first < plan.pushes; first += plan.burst) {
      const end = Math.min(first + plan.burst, plan.pushes);
      const appends: Promise<unknown>[] = [];
      for (let i = first; i < end; i++) {
        appends.push(
          store.append(scope, {
            key: `k/${i % plan.keys}`,
            digest: DIGEST,
            size: plan.bodyBytes,
            body: { type: 'bytes', bytes: bodyFor(i, plan.bodyBytes) },
          }),
        );
      }
      await Promise.all(appends);
    }
    return plan.pushes / ((performance.now() - start) / 1000);
  } finally {
    await store.close();
  }
}

export interface SqliteOutboxResult {
  readonly scenario: 'sqlite-outbox';
  readonly date: string;
  readonly quick: boolean;
  readonly method: string;
  readonly plan: Plan & { rounds: number; perPushPushes: number };
  readonly variants: Record<string, { pushesPerSec: number; samples: number[] }>;
  /** Each variant's pushes/s over the bare batched loop's. */
  readonly ratios: Record<string, number>;
  readonly target: {
    readonly description: string;
    readonly outboxPushesPerSec: number | null;
    readonly met: boolean | null;
  };
}

export async function runSqliteOutbox(
  options: SqliteOutboxOptions = {},
): Promise<SqliteOutboxResult> {
  const quick = options.quick ?? isQuick();
  const log = options.log ?? console.log;
  const rounds = options.rounds ?? (quick ? 1 : 3);
  const plan: Plan = {
    pushes: options.pushes ?? (quick ? 5_000 : 200_000),
    burst: options.burst ?? 1_000,
    keys: options.keys ?? 10_000,
    bodyBytes: options.bodyBytes ?? 100,
  };
  const perPushPushes = options.perPushPushes ?? (quick ? 500 : 20_000);
  const variants = options.variants ?? ['bare-batched', 'outbox-group-commit', 'bare-tx-per-push'];
  const samples = new Map<SqliteVariant, number[]>();
  for (let r = 1; r <= rounds; r++) {
    const order = r % 2 ? [...variants] : [...variants].reverse();
    for (const variant of order) {
      // A fresh database each time, so no variant pays for another's table size.
      const dir = mkdtempSync(join(tmpdir(), 'upsync-micro-sqlite-'));
      const path = join(dir, 'outbox.db');
      try {
        const rate =
          variant === 'outbox-group-commit'
            ? await outboxAppends(path, plan)
            : bareUpserts(
                path,
                variant === 'bare-tx-per-push' ? { ...plan, pushes: perPushPushes } : plan,
                variant === 'bare-tx-per-push',
              );
        const list = samples.get(variant) ?? [];
        list.push(rate);
        samples.set(variant, list);
        log(`round ${r} ${variant.padEnd(19)} ${Math.round(rate)} pushes/s`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
  const summary: SqliteOutboxResult['variants'] = {};
  for (const [variant, list] of samples) {
    summary[variant] = { pushesPerSec: Math.round(median(list)), samples: list.map(Math.round) };
  }
  const base = summary['bare-batched']?.pushesPerSec;
  const ratios: Record<string, number> = {};
  for (const [variant, entry] of Object.entries(summary)) {
    if (base) ratios[variant] = round(entry.pushesPerSec / base);
  }
  const outbox = summary['outbox-group-commit']?.pushesPerSec ?? null;
  const result: SqliteOutboxResult = {
    scenario: 'sqlite-outbox',
    date: new Date().toISOString(),
    quick,
    method: `Bursts of ${plan.burst} appends started together over ${plan.keys} keys, 100-byte bodies; WAL, synchronous=FULL everywhere; a fresh database per variant and round. outbox-group-commit: SqliteOutboxStore.append (group commit: one transaction per burst). bare-batched: node:sqlite upsert loop, one transaction per burst. bare-tx-per-push: one transaction per upsert.`,
    plan: { ...plan, rounds, perPushPushes },
    variants: summary,
    ratios,
    target: {
      description: 'outbox-group-commit >= 50,000 durable pushes/s',
      outboxPushesPerSec: outbox,
      met: outbox === null ? null : outbox >= 50_000,
    },
  };
  log('');
  printTable(
    Object.entries(summary).map(([variant, entry]) => ({
      variant,
      'pushes/s': entry.pushesPerSec,
      'x bare-batched': ratios[variant] ?? NaN,
    })),
    log,
  );
  log(
    `target (outbox >= 50,000 durable pushes/s in bursts): ${
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
      'per-push-pushes': { type: 'string' },
      burst: { type: 'string' },
      only: { type: 'string' },
      results: { type: 'string' },
    },
  });
  const options: SqliteOutboxOptions = {};
  if (values.rounds !== undefined) options.rounds = Number(values.rounds);
  if (values.pushes !== undefined) options.pushes = Number(values.pushes);
  if (values['per-push-pushes'] !== undefined) {
    options.perPushPushes = Number(values['per-push-pushes']);
  }
  if (values.burst !== undefined) options.burst = Number(values.burst);
  if (values.only !== undefined) options.variants = values.only.split(',') as SqliteVariant[];
  if (values.results !== undefined) options.resultsPath = values.results;
  await runSqliteOutbox(options);
}
