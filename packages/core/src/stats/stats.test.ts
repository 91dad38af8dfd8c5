import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../time/manual-clock.ts';
import { OUTCOMES, Stats, type Outcome, type StatsSnapshot } from './stats.ts';

function newStats(): { stats: Stats; clock: ManualClock } {
  const clock = new ManualClock({ startMs: 5_000 });
  return { stats: new Stats({ clock }), clock };
}

describe('Stats', () => {
  describe('outcomes', () => {
    it('counts each outcome and keeps attempted = outcomes + inProgress', () => {
      const { stats } = newStats();
      stats.begin(8);
      stats.finish('created');
      stats.finish('updated', 2);
      stats.finish('deleted');
      stats.finish('skipped');
      stats.finish('errored');
      stats.finish('timedOut');
      const s = stats.snapshot();
      expect(s).toMatchObject({
        attempted: 8,
        inProgress: 1,
        created: 1,
        updated: 2,
        deleted: 1,
        skipped: 1,
        errored: 1,
        timedOut: 1,
      });
      expect(stats.count('updated')).toBe(2);
      stats.checkInvariant();
      expect(() => stats.checkInvariant({ settled: true })).toThrow(
        /1 still in progress, 0 expected once settled/,
      );
      stats.finish('created');
      stats.checkInvariant({ settled: true });
      expect(stats.inProgress).toBe(0);
    });

    it('a dead letter counts as errored and as dead-lettered', () => {
      const { stats } = newStats();
      stats.begin(3);
      stats.deadLetter(2);
      stats.finish('errored');
      expect(stats.snapshot()).toMatchObject({ errored: 3, deadLettered: 2, inProgress: 0 });
      stats.checkInvariant({ settled: true });
    });

    it('a coalesced version leaves attempted and is never an outcome', () => {
      const { stats } = newStats();
      // 50 writes to one key taken up; 49 replaced before they were sent, 1 sent.
      stats.begin(50);
      stats.coalesce(49);
      expect(stats.attempted).toBe(1);
      expect(stats.inProgress).toBe(1);
      stats.finish('updated');
      expect(stats.snapshot()).toMatchObject({ attempted: 1, coalesced: 49, updated: 1 });
      stats.checkInvariant({ settled: true });
    });

    it('finishing more than began throws an Error naming the call and leaves the counts alone', () => {
      const { stats } = newStats();
      stats.begin();
      stats.finish('created');
      const before = stats.snapshot();
      expect(() => stats.finish('skipped')).toThrow(
        /Stats\.finish\("skipped", 1\): only 0 in progress/,
      );
      expect(() => stats.finish('skipped')).not.toThrow(TypeError);
      stats.begin(2);
      expect(() => stats.finish('timedOut', 3)).toThrow(/finish\("timedOut", 3\): only 2/);
      expect(() => stats.deadLetter(3)).toThrow(/deadLetter\(3\) \(outcome "errored"\): only 2/);
      expect(() => stats.coalesce(3)).toThrow(/coalesce\(3\): only 2/);
      expect(stats.snapshot()).toEqual({ ...before, attempted: 3, inProgress: 2 });
    });

    it('rejects an unknown outcome and bad counts with a TypeError showing the value', () => {
      const { stats } = newStats();
      stats.begin();
      expect(() => stats.finish('done' as Outcome)).toThrow(TypeError);
      expect(() => stats.finish('done' as Outcome)).toThrow(/outcome must be one of .*got "done"/);
      expect(() => stats.begin(-1)).toThrow(/n must be an integer >= 0, got -1/);
      expect(() => stats.begin(1.5)).toThrow(TypeError);
      expect(() => stats.finish('created', Number.NaN)).toThrow(/got NaN/);
      expect(() => stats.count('nope' as Outcome)).toThrow(TypeError);
      expect(stats.inProgress).toBe(1);
    });

    it('feeds finished versions, of every outcome, into itemsPerSec', async () => {
      const { stats, clock } = newStats();
      stats.begin(10);
      stats.coalesce(2); // not finished items
      stats.finish('created', 4);
      stats.deadLetter(2);
      await clock.advance(2_000);
      expect(stats.snapshot().itemsPerSec).toBeCloseTo(3, 9); // 6 in 2 s
    });

    it('takes the rate window from options', async () => {
      const clock = new ManualClock();
      const stats = new Stats({ clock, rate: { windowMs: 2_000, bucketMs: 1_000 } });
      stats.begin();
      stats.finish('created');
      await clock.advance(2_000);
      expect(stats.snapshot().itemsPerSec).toBe(0);
      expect(() => new Stats({ clock, rate: { windowMs: 1_500, bucketMs: 1_000 } })).toThrow(
        TypeError,
      );
    });
  });

  describe('requests and costs', () => {
    it('counts requests by method and status class, with network for no answer', () => {
      const { stats } = newStats();
      stats.recordRequest('PUT', 201);
      stats.recordRequest('PUT', 503);
      stats.recordRequest('PUT', 'network');
      stats.recordRequest('HEAD', 404);
      stats.recordRequest('PROPFIND', 207);
      stats.recordRequest('MKCOL', 100);
      stats.recordRequest('GET', 304);
      stats.recordRequest('GET', 599);
      const { requests } = stats.snapshot();
      expect(requests.total).toBe(8);
      expect(requests.byStatus).toEqual({
        '1xx': 1,
        '2xx': 2,
        '3xx': 1,
        '4xx': 1,
        '5xx': 2,
        network: 1,
      });
      expect(Object.keys(requests.byMethod)).toEqual(['GET', 'HEAD', 'MKCOL', 'PROPFIND', 'PUT']);
      expect(requests.byMethod.PUT).toEqual({
        total: 3,
        byStatus: { '1xx': 0, '2xx': 1, '3xx': 0, '4xx': 0, '5xx': 1, network: 1 },
      });
      stats.checkInvariant();
    });

    it('keeps a method named __proto__ as data', () => {
      const { stats } = newStats();
      stats.recordRequest('__proto__', 200);
      const parsed = JSON.parse(JSON.stringify(stats.snapshot())) as StatsSnapshot;
      expect(Object.keys(parsed.requests.byMethod)).toEqual(['__proto__']);
      expect(Object.hasOwn(stats.snapshot().requests.byMethod, '__proto__')).toBe(true);
    });

    it.each([[99], [600], [200.5], [Number.NaN], ['404']])(
      'rejects status %o with a TypeError showing it',
      (status) => {
        const { stats } = newStats();
        expect(() => stats.recordRequest('GET', status as number)).toThrow(
          new RegExp(`status must be .*got ${status === '404' ? '"404"' : String(status)}`),
        );
        expect(stats.snapshot().requests.total).toBe(0);
      },
    );

    it('rejects an empty method', () => {
      expect(() => newStats().stats.recordRequest('', 200)).toThrow(
        /method must be a non-empty string, got ""/,
      );
    });

    it('adds up retries, backoff and limiter time, and bytes sent', () => {
      const { stats } = newStats();
      stats.recordRetry();
      stats.recordRetry(2);
      stats.addBackoffMs(250);
      stats.addBackoffMs(1_000.5);
      stats.addLimiterWaitMs(200);
      stats.addBytesSent(1_024);
      stats.addBytesSent(0);
      expect(stats.snapshot()).toMatchObject({
        retries: 3,
        backoffMs: 1_250.5,
        limiterWaitMs: 200,
        bytesSent: 1_024,
      });
      expect(() => stats.addBackoffMs(-1)).toThrow(/ms must be a finite number >= 0, got -1/);
      expect(() => stats.addLimiterWaitMs(Number.POSITIVE_INFINITY)).toThrow(TypeError);
      expect(() => stats.addBytesSent(1.5)).toThrow(/bytes must be an integer >= 0, got 1.5/);
      expect(() => stats.recordRetry(-2)).toThrow(TypeError);
    });
  });

  describe('snapshot', () => {
    it('is plain data that survives a JSON round trip, with elapsed time on the clock', async () => {
      const { stats, clock } = newStats();
      stats.begin(2);
      stats.finish('created');
      stats.recordRequest('PUT', 200);
      await clock.advance(1_500);
      const snapshot = stats.snapshot();
      expect(snapshot.elapsedMs).toBe(1_500);
      expect(JSON.parse(JSON.stringify(snapshot))).toEqual(snapshot);
      expect(Object.getPrototypeOf(snapshot)).toBe(Object.prototype);
    });

    it('is a copy: later changes do not show in an earlier snapshot', () => {
      const { stats } = newStats();
      const snapshot = stats.snapshot();
      stats.begin();
      stats.recordRequest('GET', 200);
      expect(snapshot.attempted).toBe(0);
      expect(snapshot.requests.byStatus['2xx']).toBe(0);
      snapshot.requests.byStatus['2xx'] = 99;
      expect(stats.snapshot().requests.byStatus['2xx']).toBe(1);
    });

    it('starts at zero everywhere', () => {
      const snapshot = newStats().stats.snapshot();
      expect(snapshot).toEqual({
        elapsedMs: 0,
        attempted: 0,
        inProgress: 0,
        created: 0,
        updated: 0,
        deleted: 0,
        skipped: 0,
        errored: 0,
        timedOut: 0,
        deadLettered: 0,
        coalesced: 0,
        requests: {
          total: 0,
          byStatus: { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0, network: 0 },
          byMethod: {},
        },
        retries: 0,
        backoffMs: 0,
        limiterWaitMs: 0,
        bytesSent: 0,
        itemsPerSec: 0,
      });
    });
  });

  describe('checkSnapshot', () => {
    function settled(): StatsSnapshot {
      const { stats } = newStats();
      stats.begin(4);
      stats.finish('created', 2);
      stats.deadLetter();
      stats.finish('skipped');
      stats.recordRequest('PUT', 201);
      stats.recordRequest('PUT', 400);
      return stats.snapshot();
    }

    it('accepts a consistent snapshot', () => {
      expect(() => Stats.checkSnapshot(settled(), { settled: true })).not.toThrow();
    });

    it.each<[string, (s: StatsSnapshot) => void, RegExp]>([
      [
        'an outcome that was not attempted',
        (s) => void s.updated++,
        /attempted 4 != created 2 \+ updated 1 \+ deleted 0 \+ skipped 1 \+ errored 1 \+ timedOut 0 \+ inProgress 0 \(= 5\)/,
      ],
      ['a negative count', (s) => void (s.timedOut = -1), /timedOut is -1, not a whole number/],
      ['a fractional count', (s) => void (s.coalesced = 0.5), /coalesced is 0.5/],
      [
        'more dead letters than errors',
        (s) => void (s.deadLettered = 2),
        /deadLettered 2 > errored 1 \(dead letters are part of errored\)/,
      ],
      [
        'a request total that is not the sum by status',
        (s) => void (s.requests.byStatus['5xx'] = 1),
        /requests.total 2 != sum of requests.byStatus 3/,
      ],
      [
        'a method whose total is not the sum of its statuses',
        (s) => {
          const put = s.requests.byMethod.PUT;
          if (put) put.total = 5;
        },
        /requests.byMethod\["PUT"\].total 5 != sum of its byStatus 2.*requests.total 2 != sum over requests.byMethod 5/,
      ],
    ])('rejects %s', (_name, tamper, message) => {
      const snapshot = settled();
      tamper(snapshot);
      expect(() => Stats.checkSnapshot(snapshot)).toThrow(message);
    });

    it('names every violation at once', () => {
      const snapshot = settled();
      snapshot.inProgress = 1;
      snapshot.deadLettered = 9;
      expect(() => Stats.checkSnapshot(snapshot, { settled: true })).toThrow(
        /inProgress 1 \(= 5\); 1 still in progress.*; deadLettered 9 > errored 1/,
      );
    });
  });

  describe('property: any sequence of operations', () => {
    type Op =
      | { kind: 'begin'; n: number }
      | { kind: 'finish'; outcome: Outcome; n: number }
      | { kind: 'deadLetter'; n: number }
      | { kind: 'coalesce'; n: number };
    const n = fc.integer({ min: 0, max: 4 });
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ kind: fc.constant('begin' as const), n }),
      fc.record({ kind: fc.constant('finish' as const), outcome: fc.constantFrom(...OUTCOMES), n }),
      fc.record({ kind: fc.constant('deadLetter' as const), n }),
      fc.record({ kind: fc.constant('coalesce' as const), n }),
    );

    it('never goes negative, matches a model, and holds the invariant once settled', () => {
      fc.assert(
        fc.property(
          fc.array(op, { maxLength: 80 }),
          fc.constantFrom(...OUTCOMES),
          (ops, lastOutcome) => {
            const stats = new Stats({ clock: new ManualClock() });
            // The model: versions taken up and how each one left.
            const model = { begun: 0, coalesced: 0, deadLettered: 0, finished: 0 };
            const byOutcome = Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<
              Outcome,
              number
            >;
            for (const o of ops) {
              const open = model.begun - model.coalesced - model.finished;
              const over = o.kind !== 'begin' && o.n > open;
              const before = stats.snapshot();
              const run = (): void => {
                if (o.kind === 'begin') stats.begin(o.n);
                else if (o.kind === 'finish') stats.finish(o.outcome, o.n);
                else if (o.kind === 'deadLetter') stats.deadLetter(o.n);
                else stats.coalesce(o.n);
              };
              if (over) {
                expect(run).toThrow(/only \d+ in progress/);
                expect(stats.snapshot()).toEqual(before);
                continue;
              }
              run();
              if (o.kind === 'begin') model.begun += o.n;
              else if (o.kind === 'coalesce') model.coalesced += o.n;
              else {
                model.finished += o.n;
                const outcome = o.kind === 'finish' ? o.outcome : 'errored';
                byOutcome[outcome] += o.n;
                if (o.kind === 'deadLetter') model.deadLettered += o.n;
              }

              const s = stats.snapshot();
              for (const key of [
                'attempted',
                'inProgress',
                'deadLettered',
                'coalesced',
                ...OUTCOMES,
              ] as const) {
                expect(s[key]).toBeGreaterThanOrEqual(0);
              }
              expect(s.attempted).toBe(model.begun - model.coalesced);
              expect(s.inProgress).toBe(model.begun - model.coalesced - model.finished);
              expect(s.coalesced).toBe(model.coalesced);
              expect(s.deadLettered).toBe(model.deadLettered);
              for (const outcome of OUTCOMES) expect(s[outcome]).toBe(byOutcome[outcome]);
              stats.checkInvariant();
            }

            // Settle: whatever is still in progress ends somehow.
            stats.finish(lastOutcome, stats.inProgress);
            stats.checkInvariant({ settled: true });
            const s = stats.snapshot();
            expect(s.inProgress).toBe(0);
            expect(s.attempted).toBe(OUTCOMES.reduce((sum, o) => sum + s[o], 0));
            expect(s.attempted + s.coalesced).toBe(model.begun);
          },
        ),
        { numRuns: 300 },
      );
    });
  });
});
