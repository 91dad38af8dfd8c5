import { describe, expect, it } from 'vitest';
import { HttpError, NetworkError } from '../errors/upsync-error.ts';
import { MemoryRemote } from '../remote/memory-remote.ts';
import { ManualClock } from '../time/manual-clock.ts';
import { loadListing } from './load-listing.ts';

describe('loadListing', () => {
  it('tries 3 times 1 s apart, then succeeds', async () => {
    const clock = new ManualClock();
    const remote = new MemoryRemote();
    await remote.seed('a', 'x');
    remote.failNext('LIST', () => new NetworkError('reset'), { times: 2 });
    const loading = loadListing(remote, { clock });
    await clock.advance(999);
    expect(remote.callsOf('LIST')).toHaveLength(1);
    await clock.advance(1);
    expect(remote.callsOf('LIST')).toHaveLength(2);
    await clock.advance(1000);
    const result = await loading;
    expect(remote.callsOf('LIST')).toHaveLength(3);
    expect([...(result.listing?.keys() ?? [])]).toEqual(['a']);
  });

  it('falls back to no listing after 3 failed attempts', async () => {
    const clock = new ManualClock();
    const remote = new MemoryRemote();
    remote.inject((c) => (c.method === 'LIST' ? new HttpError(500, 'broken') : undefined));
    const loading = loadListing(remote, { clock });
    await clock.advance(2000);
    const result = await loading;
    expect(result.listing).toBeNull();
    expect(result.error).toBeInstanceOf(HttpError);
    expect(remote.callsOf('LIST')).toHaveLength(3);
  });

  it('ends the command on an auth failure instead of falling back', async () => {
    const clock = new ManualClock();
    const remote = new MemoryRemote();
    remote.failNext('LIST', () => new HttpError(401, 'who are you'));
    await expect(loadListing(remote, { clock })).rejects.toMatchObject({ status: 401 });
    expect(remote.callsOf('LIST')).toHaveLength(1);
  });
});
