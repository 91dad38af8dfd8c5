import { describe, expect, it } from 'vitest';
import { StateError } from '../errors/upsync-error.ts';
import { ManualClock } from '../time/manual-clock.ts';
import { runOutboxConformance } from './conformance.ts';
import { MemoryOutboxStore } from './memory-store.ts';

runOutboxConformance('MemoryOutboxStore conformance', (options) => {
  const clock = new ManualClock({ startMs: 1_000_000 });
  return Promise.resolve({ store: new MemoryOutboxStore({ clock, ...options }), clock });
});

describe('MemoryOutboxStore', () => {
  it('checks its options with a TypeError that shows the bad value', () => {
    expect(() => new MemoryOutboxStore({ deadLetterCap: -1 })).toThrow(/-1/);
    expect(() => new MemoryOutboxStore({ deadLetterCap: 1.5 })).toThrow(/1\.5/);
    expect(() => new MemoryOutboxStore({ clock: {} as never })).toThrow(TypeError);
  });

  it('names the lock holder', async () => {
    const store = new MemoryOutboxStore();
    await store.lock('tab-1');
    await expect(store.lock('tab-2')).rejects.toThrow(StateError);
    await expect(store.lock('tab-2')).rejects.toThrow(/"tab-1"/);
    await store.close();
  });
});
