import { describe, expect, it } from 'vitest';
import { HttpError } from '../errors/upsync-error.ts';
import { sha256Hex } from '../engine/version-body.ts';
import { MemoryRemote } from './memory-remote.ts';
import type { RemoteBody } from './remote.ts';

async function body(text: string, claimed?: string): Promise<RemoteBody> {
  const bytes = new TextEncoder().encode(text);
  const digest = await sha256Hex(new TextEncoder().encode(claimed ?? text));
  return {
    size: bytes.byteLength,
    digest,
    // eslint-disable-next-line @typescript-eslint/require-await
    async *open() {
      yield bytes;
    },
  };
}

describe('MemoryRemote', () => {
  it('creates, updates, answers unchanged, and replays an idempotency key', async () => {
    const remote = new MemoryRemote();
    const put = async (text: string, idempotencyKey: string) =>
      remote.put({ key: 'k', body: await body(text), idempotencyKey });
    expect(await put('a', 'i1')).toMatchObject({ created: true, unchanged: false, version: 1 });
    expect(await put('b', 'i2')).toMatchObject({ created: false, unchanged: false, version: 2 });
    expect(await put('b', 'i3')).toMatchObject({ unchanged: true, version: 2 });
    expect(await put('a', 'i1')).toMatchObject({ created: true, version: 1 });
    expect(remote.text('k')).toBe('b');
    expect(remote.applied.map((a) => a.text)).toEqual(['a', 'b']);
    await expect(put('c', 'i1')).rejects.toMatchObject({ status: 422 });
  });

  it('refuses a body that does not match its digest', async () => {
    const remote = new MemoryRemote();
    await expect(
      remote.put({ key: 'k', body: await body('actual', 'claimed'), idempotencyKey: 'i' }),
    ).rejects.toSatisfy((e) => e instanceof HttpError && e.serverCode === 'DIGEST_MISMATCH');
    expect(remote.keys()).toEqual([]);
  });

  it('deletes, takes an absent key as not existing, lists with or without digests', async () => {
    const remote = new MemoryRemote({ listDigests: false });
    await remote.seed('b', 'x');
    await remote.seed('a', 'y');
    const listed = [];
    for await (const item of remote.list()) listed.push(item);
    expect(listed.map((i) => [i.key, i.size, i.digest])).toEqual([
      ['a', 1, undefined],
      ['b', 1, undefined],
    ]);
    expect(await remote.delete('a', { idempotencyKey: 'd1' })).toEqual({ existed: true });
    expect(await remote.delete('zz', { idempotencyKey: 'd2' })).toEqual({ existed: false });
    expect(remote.keys()).toEqual(['b']);
  });

  it('fails calls as injected', async () => {
    const remote = new MemoryRemote();
    remote.failNext('HEAD', () => new HttpError(503, 'busy'), { key: 'k', times: 2 });
    await expect(remote.stat('k')).rejects.toMatchObject({ status: 503 });
    await expect(remote.stat('other')).resolves.toBeNull();
    await expect(remote.stat('k')).rejects.toMatchObject({ status: 503 });
    await expect(remote.stat('k')).resolves.toBeNull();
    expect(remote.callsOf('HEAD', 'k').map((c) => c.nth)).toEqual([1, 2, 3]);
  });
});
