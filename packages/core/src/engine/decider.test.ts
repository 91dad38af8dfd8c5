import { describe, expect, it } from 'vitest';
import { MemoryOutboxStore } from '../outbox/memory-store.ts';
import type { OutboxScope, PendingRow } from '../outbox/outbox-store.ts';
import { MemoryRemote } from '../remote/memory-remote.ts';
import { Decider, type Listing } from './decider.ts';
import { sha256Hex } from './version-body.ts';

const scope: OutboxScope = { remote: 'memory://remote', project: 'p1', principal: 'tester' };

function setup(): { store: MemoryOutboxStore; remote: MemoryRemote; decider: Decider } {
  const store = new MemoryOutboxStore();
  const remote = new MemoryRemote();
  return { store, remote, decider: new Decider({ store, scope, remote }) };
}

async function row(
  store: MemoryOutboxStore,
  key: string,
  text: string | null,
): Promise<PendingRow> {
  if (text === null) return store.append(scope, { key, kind: 'delete' });
  const bytes = new TextEncoder().encode(text);
  return store.append(scope, {
    key,
    digest: await sha256Hex(bytes),
    size: bytes.byteLength,
    body: { type: 'bytes', bytes },
  });
}

describe('Decider', () => {
  it('sends what the caller says is new, without a check', async () => {
    const { store, remote, decider } = setup();
    const r = await row(store, 'a', 'x');
    expect(await decider.decide({ row: r, knownNew: true, listing: null })).toMatchObject({
      send: true,
      reason: 'known-new',
    });
    expect(remote.calls).toEqual([]);
  });

  it('goes by the listing: equal digest skips, absent or different sends', async () => {
    const { store, remote, decider } = setup();
    const same = await row(store, 'same', 'x');
    const listing: Listing = new Map([
      ['same', { size: 1, digest: same.digest ?? '' }],
      ['other', { size: 1, digest: 'f'.repeat(64) }],
    ]);
    const decide = async (key: string): Promise<string> =>
      (await decider.decide({ row: await row(store, key, 'x'), knownNew: false, listing })).reason;
    expect(await decide('same')).toBe('listing-equal');
    expect(await decide('other')).toBe('listing-differs');
    expect(await decide('absent')).toBe('listing-absent');
    expect(remote.calls).toEqual([]);
  });

  it('with sizes only, skips when the synced digest and the remote size match', async () => {
    const { store, decider } = setup();
    const r = await row(store, 'a', 'abc');
    const listing: Listing = new Map([['a', { size: 3 }]]);
    expect((await decider.decide({ row: r, knownNew: false, listing })).send).toBe(true);
    await store.setSynced(scope, 'a', { digest: r.digest, size: 3 });
    expect(await decider.decide({ row: r, knownNew: false, listing })).toMatchObject({
      send: false,
      reason: 'synced-equal',
    });
    const grown: Listing = new Map([['a', { size: 4 }]]);
    expect((await decider.decide({ row: r, knownNew: false, listing: grown })).send).toBe(true);
  });

  it('without a listing: the synced digest, then one HEAD', async () => {
    const { store, remote, decider } = setup();
    const r = await row(store, 'a', 'abc');
    expect(await decider.decide({ row: r, knownNew: false, listing: null })).toMatchObject({
      send: true,
      reason: 'remote-absent',
    });
    await remote.seed('a', 'abc');
    expect(await decider.decide({ row: r, knownNew: false, listing: null })).toMatchObject({
      send: false,
      reason: 'remote-equal',
      remote: { size: 3 },
    });
    await remote.seed('a', 'changed');
    expect((await decider.decide({ row: r, knownNew: false, listing: null })).reason).toBe(
      'remote-differs',
    );
    expect(remote.callsOf('HEAD')).toHaveLength(3);
    await store.setSynced(scope, 'a', { digest: r.digest, size: 3 });
    expect((await decider.decide({ row: r, knownNew: false, listing: null })).reason).toBe(
      'synced-equal',
    );
    expect(remote.callsOf('HEAD')).toHaveLength(3);
  });

  it('sends a delete unless the listing shows the key absent', async () => {
    const { store, remote, decider } = setup();
    const r = await row(store, 'gone', null);
    expect((await decider.decide({ row: r, knownNew: false, listing: null })).send).toBe(true);
    expect((await decider.decide({ row: r, knownNew: false, listing: new Map() })).send).toBe(
      false,
    );
    expect(remote.calls).toEqual([]);
  });
});
