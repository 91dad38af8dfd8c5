import type { OutboxScope, OutboxStore, PendingRow } from '../outbox/outbox-store.ts';
import type { Remote, RemoteItemState } from '../remote/remote.ts';
import { describeValue } from './describe-value.ts';

/** What a listing says of one key: its size, and its digest where the remote gives one. */
export interface ListedItem {
  readonly size: number;
  readonly digest?: string;
  readonly etag?: string;
  readonly modifiedMs?: number;
}

/** A listing loaded for this command, by key. */
export type Listing = ReadonlyMap<string, ListedItem>;

export type DecisionReason =
  | 'known-new'
  | 'delete'
  | 'listing-absent'
  | 'listing-equal'
  | 'listing-differs'
  | 'synced-equal'
  | 'remote-absent'
  | 'remote-equal'
  | 'remote-differs';

/** What the remote holds, when the decision learned it (to record in `synced` on a skip). */
export interface RemoteSeen {
  readonly size: number;
  readonly etag?: string;
  readonly modifiedMs?: number;
}

export interface Decision {
  readonly send: boolean;
  readonly reason: DecisionReason;
  readonly remote?: RemoteSeen;
}

export interface DecideInput {
  readonly row: PendingRow;
  readonly knownNew: boolean;
  readonly listing: Listing | null;
  readonly signal?: AbortSignal;
}

export interface DeciderOptions {
  store: OutboxStore;
  scope: OutboxScope;
  remote: Pick<Remote, 'stat'>;
}

function fromState(state: RemoteItemState | ListedItem): RemoteSeen {
  return {
    size: state.size,
    ...(state.etag === undefined ? {} : { etag: state.etag }),
    ...(state.modifiedMs === undefined ? {} : { modifiedMs: state.modifiedMs }),
  };
}

/**
 * Whether a version needs sending (shared/DESIGN.md "Deciding whether an item
 * needs sending"), cheapest check first: the caller's word, the command's
 * listing, the synced table, and only then one HEAD. It reads no content.
 * A stat failure is thrown as it is: the dispatcher treats it like a failed send.
 */
export class Decider {
  readonly #store: OutboxStore;
  readonly #scope: OutboxScope;
  readonly #remote: Pick<Remote, 'stat'>;

  constructor(options: DeciderOptions) {
    if (typeof options?.remote?.stat !== 'function') {
      throw new TypeError(`remote must have stat(), got ${describeValue(options?.remote)}`);
    }
    this.#store = options.store;
    this.#scope = options.scope;
    this.#remote = options.remote;
  }

  async decide(input: DecideInput): Promise<Decision> {
    const { row, listing } = input;
    if (row.kind === 'delete') {
      // Sent unless known absent: a DELETE answered 404 is done anyway.
      if (listing && !listing.has(row.key)) return { send: false, reason: 'listing-absent' };
      return { send: true, reason: 'delete' };
    }
    if (input.knownNew) return { send: true, reason: 'known-new' };
    if (listing) {
      const listed = listing.get(row.key);
      if (!listed) return { send: true, reason: 'listing-absent' };
      if (listed.digest !== undefined) {
        return listed.digest === row.digest
          ? { send: false, reason: 'listing-equal', remote: fromState(listed) }
          : { send: true, reason: 'listing-differs' };
      }
      // Sizes only (WebDAV): the synced table remembers the local digest and the
      // remote size of the last sync.
      const synced = await this.#store.getSynced(this.#scope, row.key);
      const same = synced?.digest === row.digest && synced.size === listed.size;
      return same
        ? { send: false, reason: 'synced-equal', remote: fromState(listed) }
        : { send: true, reason: 'listing-differs' };
    }
    const synced = await this.#store.getSynced(this.#scope, row.key);
    if (synced && synced.digest === row.digest) {
      return {
        send: false,
        reason: 'synced-equal',
        remote: { size: synced.size, ...(synced.etag === null ? {} : { etag: synced.etag }) },
      };
    }
    const state = await this.#remote.stat(
      row.key,
      input.signal ? { signal: input.signal } : undefined,
    );
    if (!state) return { send: true, reason: 'remote-absent' };
    if (state.digest !== undefined && state.digest === row.digest) {
      return { send: false, reason: 'remote-equal', remote: fromState(state) };
    }
    return { send: true, reason: 'remote-differs' };
  }
}
