import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ManualClock } from '../time/manual-clock.ts';
import {
  DEFAULT_BUFFER,
  Scheduler,
  type GroupSettings,
  type Release,
  type ReleaseOutcome,
  type SchedulerOptions,
} from './scheduler.ts';

const S = 1000;

interface Sent {
  atS: number;
  group: string;
  values: string[];
  immediate: boolean;
}

/** A scheduler whose sends take `sendMs` on the manual clock and are logged. */
function setup(
  options: Partial<SchedulerOptions<string>> & {
    sendMs?: number;
    outcome?: (release: Release<string>) => ReleaseOutcome;
  } = {},
) {
  const clock = new ManualClock();
  const sent: Sent[] = [];
  const coalesced: string[] = [];
  const scheduler = new Scheduler<string>({
    clock,
    settings: { leading: true, intervalMs: 10 * S },
    onCoalesced: (replaced) => coalesced.push(replaced.value),
    ...options,
    onRelease: async (release) => {
      sent.push({
        atS: clock.now() / S,
        group: release.groupId,
        values: release.changes.map((c) => c.value),
        immediate: release.immediate,
      });
      if (options.sendMs) await clock.sleep(options.sendMs);
      return options.outcome?.(release) ?? { sent: true };
    },
  });
  /** Moves the clock to `s` seconds. */
  const at = (s: number) => clock.advanceTo(s * S);
  return { clock, scheduler, sent, coalesced, at };
}

describe('Scheduler: per-key debounce (leading, 10 s)', () => {
  it('reproduces the example timeline of DESIGN.md: sends at t0, t10, t21, t26', async () => {
    const { scheduler, sent, coalesced, at } = setup({ sendMs: 100 });
    const changes: [number, string][] = [
      [0, 'change 1'],
      [1, 'change 2'],
      [2, 'change 3'],
      [21, 'change 4'],
      [22, 'change 5'],
      [23, 'change 6'],
    ];
    for (const [t, value] of changes) {
      await at(t);
      scheduler.push('session.md', value);
    }
    await at(26);
    const flushed = scheduler.flushAll(); // exit at t26
    await at(26.1); // the last send takes 100 ms
    await flushed;
    expect(sent.map((s) => [s.atS, s.values])).toEqual([
      [0, ['change 1']],
      [10, ['change 3']],
      [21, ['change 4']],
      [26, ['change 6']],
    ]);
    expect(coalesced).toEqual(['change 2', 'change 5']);
    expect(scheduler.coalesced).toBe(2);
    expect(scheduler.queued).toBe(0);
  });

  it('the window ends silently when nothing is queued', async () => {
    const { scheduler, sent, clock, at } = setup();
    scheduler.push('a', 'v1');
    await at(30);
    expect(sent).toHaveLength(1);
    expect(clock.pendingTimers).toBe(0); // no timer left behind for an idle key
  });

  it('keys are independent', async () => {
    const { scheduler, sent, at } = setup();
    scheduler.push('a', 'a1');
    await at(1);
    scheduler.push('b', 'b1');
    scheduler.push('a', 'a2');
    await at(5);
    scheduler.push('b', 'b2');
    await at(30);
    expect(sent.map((s) => [s.atS, s.group, s.values[0]])).toEqual([
      [0, 'a', 'a1'],
      [1, 'b', 'b1'],
      [10, 'a', 'a2'],
      [11, 'b', 'b2'],
    ]);
  });

  it('flushAll with nothing queued sends nothing and resolves at once', async () => {
    const { scheduler, sent, at } = setup();
    await scheduler.flushAll();
    scheduler.push('a', 'v1');
    await at(15);
    await scheduler.flushAll();
    expect(sent.map((s) => s.values[0])).toEqual(['v1']);
  });

  it('a change at exactly t+I counts as past the window and goes at once', async () => {
    const { scheduler, sent, at } = setup();
    scheduler.push('a', 'v1');
    await at(10);
    scheduler.push('a', 'v2');
    await at(10); // no time passes
    expect(sent.map((s) => [s.atS, s.values[0]])).toEqual([
      [0, 'v1'],
      [10, 'v2'],
    ]);
  });

  it('a change just before t+I waits for the window end', async () => {
    const { scheduler, sent, at } = setup();
    scheduler.push('a', 'v1');
    await at(9.999);
    scheduler.push('a', 'v2');
    expect(sent).toHaveLength(1);
    await at(10);
    expect(sent.map((s) => s.atS)).toEqual([0, 10]);
  });

  it('a send still in progress when the window ends: the queued change goes the moment it finishes', async () => {
    const { scheduler, sent, at } = setup({ sendMs: 14 * S }); // retries make the send last 14 s
    scheduler.push('a', 'v1');
    await at(3);
    scheduler.push('a', 'v2');
    await at(10);
    expect(sent).toHaveLength(1); // window over, but v1 is still in flight
    await at(14);
    expect(sent.map((s) => [s.atS, s.values[0]])).toEqual([
      [0, 'v1'],
      [14, 'v2'],
    ]);
    // That send opened a window from t14 to t24, but lasts until t28 itself.
    await at(20);
    scheduler.push('a', 'v3');
    await at(27.9);
    expect(sent).toHaveLength(2);
    await at(28);
    expect(sent.map((s) => s.atS)).toEqual([0, 14, 28]);
  });

  it('a skipped release opens no window', async () => {
    const { scheduler, sent, at } = setup({
      outcome: (release) => ({ sent: release.changes[0]?.value !== 'same' }),
    });
    scheduler.push('a', 'same'); // the decider skips it
    await at(1);
    scheduler.push('a', 'new'); // no send started in the last 10 s: goes at once
    await at(1);
    expect(sent.map((s) => [s.atS, s.values[0]])).toEqual([
      [0, 'same'],
      [1, 'new'],
    ]);
  });

  it('a send that starts after the release opens its window at the real start', async () => {
    const { scheduler, sent, clock, at } = setup({
      outcome: () => ({ sent: true, startedAtMs: clock.now() + 4 * S }),
    });
    scheduler.push('a', 'v1'); // waited 4 s for a worker slot, say
    await at(1);
    scheduler.push('a', 'v2');
    await at(10);
    expect(sent).toHaveLength(1);
    await at(14);
    expect(sent.map((s) => s.atS)).toEqual([0, 14]);
  });

  it('many concurrent pushes to one key: one send at once, one with the newest at the window end', async () => {
    const { scheduler, sent, at } = setup({ sendMs: 50 });
    for (let i = 1; i <= 1000; i++) scheduler.push('hot', `v${i}`);
    await at(0);
    await Promise.all(
      Array.from({ length: 500 }, (_, i) =>
        Promise.resolve().then(() => scheduler.push('hot', `w${i}`)),
      ),
    );
    await at(60);
    expect(sent.map((s) => [s.atS, s.values])).toEqual([
      [0, ['v1']],
      [10, ['w499']],
    ]);
    expect(scheduler.coalesced).toBe(1000 + 500 - 2);
  });

  it('a push made from inside onRelease queues behind the send in progress', async () => {
    const clock = new ManualClock();
    const sent: string[] = [];
    const scheduler: Scheduler<string> = new Scheduler<string>({
      clock,
      settings: { leading: true, intervalMs: 10 * S },
      onRelease: (release) => {
        sent.push(release.changes[0]!.value);
        if (release.changes[0]!.value === 'v1') scheduler.push('a', 'v2');
        return { sent: true };
      },
    });
    scheduler.push('a', 'v1');
    await clock.advance(0);
    expect(sent).toEqual(['v1']);
    await clock.advance(10 * S);
    expect(sent).toEqual(['v1', 'v2']);
  });
});

describe('Scheduler: ordered pushes and the immediate lane', () => {
  it('ordered pushes are never coalesced and go in order, together with the newest plain change', async () => {
    const { scheduler, sent, at } = setup();
    scheduler.push('post', 'first');
    await at(1);
    scheduler.push('post', 'draft 1');
    scheduler.push('post', 'publish', { ordered: true });
    scheduler.push('post', 'draft 2', { ordered: true });
    scheduler.push('post', 'edit 1');
    scheduler.push('post', 'edit 2'); // replaces edit 1, which came after the ordered ones
    await at(10);
    expect(sent.map((s) => s.values)).toEqual([
      ['first'],
      ['draft 1', 'publish', 'draft 2', 'edit 2'],
    ]);
    expect(scheduler.coalesced).toBe(1);
  });

  it('a plain change never jumps ahead of an ordered one of its key', async () => {
    const { scheduler, sent, at } = setup();
    scheduler.push('k', 'v0');
    scheduler.push('k', 'a');
    scheduler.push('k', 'b', { ordered: true });
    scheduler.push('k', 'c'); // must not replace "a": c's content must end up last
    await at(10);
    expect(sent[1]?.values).toEqual(['a', 'b', 'c']);
  });

  it('an immediate change goes at once, inside the window, taking the queue with it', async () => {
    const { scheduler, sent, at } = setup();
    scheduler.push('s', 'activity 1');
    await at(2);
    scheduler.push('s', 'activity 2');
    await at(3);
    scheduler.push('s-end', 'session ended', { immediate: true });
    scheduler.push('s', 'critical', { immediate: true });
    await at(3);
    expect(sent.map((s) => [s.atS, s.group, s.values, s.immediate])).toEqual([
      [0, 's', ['activity 1'], false],
      [3, 's-end', ['session ended'], true],
      [3, 's', ['critical'], true],
    ]);
    expect(scheduler.coalesced).toBe(1);
  });

  it('an immediate change still waits for the send of its key in progress', async () => {
    const { scheduler, sent, at } = setup({ sendMs: 2 * S });
    scheduler.push('k', 'v1');
    await at(1);
    scheduler.push('k', 'urgent', { immediate: true });
    await at(1.5);
    expect(sent).toHaveLength(1);
    await at(2);
    expect(sent.map((s) => [s.atS, s.values[0]])).toEqual([
      [0, 'v1'],
      [2, 'urgent'],
    ]);
  });
});

describe('Scheduler: store-wide buffer style (2 s buffer, 5 s gap)', () => {
  const storeWide = { groupOf: () => 'store', settings: DEFAULT_BUFFER };

  it('buffers changes for 2 s, sends them together, and keeps 5 s between sends', async () => {
    const { scheduler, sent, coalesced, at } = setup(storeWide);
    scheduler.push('sessions/1', 'a1');
    await at(0.5);
    scheduler.push('activity/9', 'b1');
    await at(1);
    scheduler.push('sessions/1', 'a2');
    await at(1.9);
    expect(sent).toHaveLength(0);
    await at(2);
    expect(sent.map((s) => [s.atS, s.values])).toEqual([[2, ['a2', 'b1']]]);
    expect(coalesced).toEqual(['a1']);
    // A change at t3 buffers until t5, but the gap holds it to t7.
    await at(3);
    scheduler.push('activity/9', 'b2');
    await at(6.9);
    expect(sent).toHaveLength(1);
    await at(7);
    expect(sent.map((s) => s.atS)).toEqual([2, 7]);
    // Long after, a change waits only its buffer window.
    await at(30);
    scheduler.push('x', 'x1');
    await at(32);
    expect(sent.map((s) => s.atS)).toEqual([2, 7, 32]);
  });

  it('flushAll sends the buffer at once', async () => {
    const { scheduler, sent, at } = setup(storeWide);
    scheduler.push('a', 'a1');
    await at(0.5);
    await scheduler.flushAll();
    expect(sent.map((s) => [s.atS, s.values])).toEqual([[0.5, ['a1']]]);
  });

  it('a sliding debounce with maxWait sends after quiet, or at maxWait at the latest', async () => {
    const settings: GroupSettings = { leading: false, intervalMs: 1 * S, maxWaitMs: 3 * S };
    const { scheduler, sent, at } = setup({ groupOf: () => 'g', settings });
    for (let t = 0; t <= 5; t += 0.5) {
      await at(t);
      scheduler.push('k', `v${t}`);
    }
    await at(10);
    // Changes never paused for 1 s: the first buffer went at maxWait (t3, before
    // the change of t3), then the rest 1 s after the last change (t5 + 1).
    expect(sent.map((s) => [s.atS, s.values])).toEqual([
      [3, ['v2.5']],
      [6, ['v5']],
    ]);
  });
});

describe('Scheduler: saving and restoring pacing', () => {
  it('a restarted scheduler keeps the window of a send made before the restart', async () => {
    const first = setup();
    first.scheduler.push('a', 'v1');
    await first.at(4);
    first.scheduler.push('a', 'v2');
    const saved = first.scheduler.snapshot();
    expect(saved).toEqual([{ groupId: 'a', lastSendStartMs: 0 }]);
    first.scheduler.close();

    // The new process reloads the pending change from its outbox.
    const second = setup();
    await second.at(4);
    second.scheduler.restore(saved);
    second.scheduler.push('a', 'v2', { atMs: 4 * S });
    expect(second.scheduler.dueAtMs('a')).toBe(10 * S);
    await second.at(9);
    expect(second.sent).toHaveLength(0);
    await second.at(10);
    expect(second.sent.map((s) => [s.atS, s.values[0]])).toEqual([[10, 'v2']]);
  });

  it('a snapshot leaves out groups whose window has passed', async () => {
    const { scheduler, at } = setup();
    scheduler.push('a', 'v1');
    await at(5);
    scheduler.push('b', 'v1');
    await at(12);
    expect(scheduler.snapshot()).toEqual([{ groupId: 'b', lastSendStartMs: 5 * S }]);
  });
});

describe('Scheduler: robustness', () => {
  it('a failing onRelease is reported, counts as a send, and the key goes on', async () => {
    const clock = new ManualClock();
    const errors: unknown[] = [];
    const values: string[] = [];
    const scheduler = new Scheduler<string>({
      clock,
      onReleaseError: (error) => errors.push(error),
      onRelease: (release) => {
        values.push(release.changes[0]!.value);
        if (values.length === 1) throw new Error('dispatcher bug');
        return { sent: true };
      },
    });
    scheduler.push('a', 'v1');
    await clock.advance(1 * S);
    scheduler.push('a', 'v2');
    await clock.advance(9 * S);
    expect(values).toEqual(['v1', 'v2']);
    expect(errors).toHaveLength(1);
  });

  it('validates settings with a message that names the bad value', () => {
    const clock = new ManualClock();
    const onRelease = () => ({ sent: true });
    expect(
      () => new Scheduler({ clock, onRelease, settings: { leading: true, intervalMs: -1 } }),
    ).toThrow(/intervalMs must be a finite number >= 0, got -1/);
    const scheduler = new Scheduler<string>({
      clock,
      onRelease,
      settings: () => ({ leading: true, intervalMs: Number.NaN }),
    });
    expect(() => scheduler.push('a', 'v')).toThrow(/group "a": intervalMs .* got NaN/);
  });

  it('property: no two sends of a key overlap, sends of a key keep the interval, and the newest change is always sent', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            gapMs: fc.integer({ min: 0, max: 4 * S }),
            key: fc.constantFrom('a', 'b', 'c'),
            ordered: fc.boolean(),
          }),
          { minLength: 1, maxLength: 40, size: 'max' },
        ),
        fc.integer({ min: 0, max: 15 * S }),
        async (pushes, sendMs) => {
          const clock = new ManualClock();
          const starts = new Map<string, number[]>();
          const active = new Set<string>();
          const lastSent = new Map<string, string>();
          let overlap = false;
          const scheduler = new Scheduler<string>({
            clock,
            settings: { leading: true, intervalMs: 10 * S },
            onRelease: async (release) => {
              if (active.has(release.groupId)) overlap = true;
              active.add(release.groupId);
              const list = starts.get(release.groupId) ?? [];
              list.push(clock.now());
              starts.set(release.groupId, list);
              for (const change of release.changes) lastSent.set(change.key, change.value);
              await clock.sleep(sendMs);
              active.delete(release.groupId);
              return { sent: true };
            },
          });
          const newest = new Map<string, string>();
          let i = 0;
          for (const push of pushes) {
            await clock.advance(push.gapMs);
            const value = `${push.key}${i++}`;
            newest.set(push.key, value);
            scheduler.push(push.key, value, { ordered: push.ordered });
          }
          await clock.runAll();
          await scheduler.flushAll();
          expect(overlap).toBe(false);
          expect(lastSent).toEqual(newest);
          for (const list of starts.values()) {
            for (let j = 1; j < list.length; j++) {
              expect(list[j]! - list[j - 1]!).toBeGreaterThanOrEqual(10 * S);
            }
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});
