import { ConfigError, type PauseInfo } from '@upsync/core';
import type { OpenedEngine } from './open-engine.ts';
import type { CliIo } from './main.ts';
import type { SyncOptions } from './sync-options.ts';

/** Pushes taken in at once during a scan: enough to fill group commits, bounded in memory. */
const PUSH_WINDOW = 256;

export interface ReconcileResult {
  /** Set when the remote refused the token or has no such project: the command must end. */
  readonly paused: PauseInfo | null;
  /** Files offered to the engine, tombstones included. */
  readonly pushed: number;
  readonly skippedFiles: number;
}

/**
 * One full pass (what `sync` does, and `run` before it watches): the remote's
 * listing once, then every file of the folder pushed into the outbox (the
 * engine decides what to send); with `--delete`, a tombstone for each key of
 * the synced table the folder no longer has. With `--only`, one key and no
 * listing (the engine checks it against the synced table, then a HEAD).
 */
export async function reconcile(
  opened: OpenedEngine,
  options: SyncOptions,
  io: CliIo,
  signal?: AbortSignal,
): Promise<ReconcileResult> {
  const { engine, source, store, scope } = opened;
  const name = `upsync ${options.command}`;
  if (options.only !== undefined) {
    const item = await source.file(options.only, { signal });
    if (item?.type === 'file') {
      await engine.push(options.only, item.body.toReference());
      return { paused: null, pushed: 1, skippedFiles: 0 };
    }
    if (item?.type === 'skipped') throw new ConfigError(`--only ${options.only}: ${item.reason}`);
    if (!options.delete) {
      throw new ConfigError(
        `--only ${options.only}: no such file in ${options.dir} (add --delete to delete it on the remote)`,
      );
    }
    await engine.push(options.only, null, { delete: true });
    return { paused: null, pushed: 1, skippedFiles: 0 };
  }

  try {
    const listing = await engine.loadListing(signal ? { signal } : {});
    if (listing.listing) {
      io.stderr(`${name}: the remote lists ${listing.listing.size} items\n`);
    } else {
      io.stderr(
        `${name}: the listing failed 3 times (${(listing.error as Error)?.message ?? String(listing.error)}); checking each item with HEAD\n`,
      );
    }
  } catch (error) {
    const paused = (await engine.status()).paused;
    if (paused) return { paused, pushed: 0, skippedFiles: 0 };
    throw error;
  }

  let knownKeys: string[] | undefined;
  if (options.delete) {
    knownKeys = [];
    for await (const row of store.syncedEntries(scope)) knownKeys.push(row.key);
  }
  // A version still pending from an earlier run (one killed mid-send, say) is
  // sent again as it is, under its own Idempotency-Key: pushing the same
  // content again would make a second version with a new key.
  const pendingSeqs = new Map<string, number>();
  const pendingDigests = new Map<string, string | null>();
  for await (const row of store.pendingEntries(scope)) {
    if (row.seq > (pendingSeqs.get(row.key) ?? -1)) {
      pendingDigests.set(row.key, row.kind === 'put' ? row.digest : null);
      pendingSeqs.set(row.key, row.seq);
    }
  }
  let pushed = 0;
  let skippedFiles = 0;
  // An outbox write that fails is kept and thrown once the scan is done.
  let failure: { error: unknown } | undefined;
  const window = new Set<Promise<void>>();
  const take = async (promise: Promise<unknown>): Promise<void> => {
    const tracked: Promise<void> = promise
      .then(
        () => undefined,
        (error: unknown) => {
          failure ??= { error };
        },
      )
      .finally(() => window.delete(tracked));
    window.add(tracked);
    pushed++;
    if (window.size >= PUSH_WINDOW) await Promise.race(window);
  };
  try {
    for await (const item of source.scan({ signal, knownKeys })) {
      if (failure) break;
      if (item.type === 'file') {
        if (pendingDigests.get(item.key) === item.body.digest) continue;
        await take(engine.push(item.key, item.body.toReference()));
      } else if (item.type === 'deleted') {
        if (pendingDigests.has(item.key) && pendingDigests.get(item.key) === null) continue;
        await take(engine.push(item.key, null, { delete: true }));
      } else {
        skippedFiles++;
        io.stderr(`${name}: skipped ${item.key}: ${item.reason}\n`);
      }
    }
  } finally {
    await Promise.all(window);
  }
  if (failure) throw failure.error;
  io.stderr(`${name}: ${pushed} items taken up from ${options.dir}\n`);
  return { paused: null, pushed, skippedFiles };
}
