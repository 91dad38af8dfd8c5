import type { OutboxScope, OutboxStore, PendingRow } from '../outbox/outbox-store.ts';
import type { Clock, TimerHandle } from '../time/clock.ts';

export interface LeaseKeeperOptions {
  store: OutboxStore;
  scope: OutboxScope;
  clock: Clock;
  owner: string;
  leaseMs: number;
  /** The rows leased right now; read at each renewal, as a send's row changes on a retry. */
  rows: () => Iterable<Pick<PendingRow, 'key' | 'seq'>>;
}

/**
 * Keeps the leases of rows being sent alive: every half lease it pushes their
 * expiry a whole lease ahead, so a send that runs long (a large body, a slow
 * remote, a wait for a permit) is never taken up by another process while it
 * is still going. Returns the function that stops it.
 *
 * A renewal that fails or finds the lease gone changes nothing here: the send
 * goes on, and the acknowledgement deletes exactly the sent seq either way.
 */
export function keepLeases(options: LeaseKeeperOptions): () => void {
  const { store, scope, clock, owner, leaseMs } = options;
  const everyMs = leaseMs / 2;
  let stopped = false;
  let handle: TimerHandle | undefined;
  const schedule = (): void => {
    handle = clock.setTimeout(renew, everyMs);
  };
  // The next renewal is set before this one's I/O, so a slow store cannot stretch the period.
  const renew = (): void => {
    if (stopped) return;
    schedule();
    for (const row of options.rows()) {
      void store.extendLease(scope, row.key, row.seq, { owner, leaseMs }).catch(() => false);
    }
  };
  schedule();
  return () => {
    stopped = true;
    if (handle !== undefined) clock.clearTimeout(handle);
  };
}
