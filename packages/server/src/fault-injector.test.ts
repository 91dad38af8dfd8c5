import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock, seededRandom } from '@upsync/core/testing';
import { FaultInjector } from './fault-injector.ts';
import { ADMIN_TOKEN, auth, startTestServer, type TestServer } from './test-helpers.ts';

/** Parses Retry-After in either form into a wait in ms, or undefined when invalid. */
function parseRetryAfter(value: string | null, nowMs: number): number | undefined {
  if (value === null) return undefined;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const atMs = Date.parse(value);
  if (Number.isNaN(atMs) || new Date(atMs).toUTCString() !== value) return undefined;
  return Math.max(0, atMs - nowMs);
}

let t: TestServer;
let clock: ManualClock;
let faults: FaultInjector;

beforeAll(async () => {
  clock = new ManualClock({ startMs: Date.UTC(2030, 0, 1, 12, 0, 0, 250) });
  faults = new FaultInjector({ clock, random: seededRandom(42) });
  t = await startTestServer({ clock, faults });
});
afterAll(async () => {
  await t.close();
});

const health = (): Promise<Response> =>
  fetch(`${t.url}/v1/projects/p1/items?limit=1`, { headers: auth() });

describe('fault injection', () => {
  it('is off by default', async () => {
    for (let i = 0; i < 20; i += 1) expect((await health()).status).toBe(200);
  });

  it('answers the configured share of 429s, each with a valid Retry-After in either form', async () => {
    const seed = 7;
    faults.configure({ share429: 0.3, retryAfter: 'mixed', retryAfterSeconds: 2 });
    const local = new FaultInjector({ clock, random: seededRandom(seed) });
    local.configure({ share429: 0.3, retryAfter: 'mixed', retryAfterSeconds: 2 });
    const expected = Array.from({ length: 200 }, () => local.decide('x').kind === 'status');
    const seeded = new FaultInjector({ clock, random: seededRandom(seed) });
    // Swap in a fresh seeded source so this test's draws are known in advance.
    t.server.faults.configure({ share429: 0 });
    const server = await startTestServer({ clock, faults: seeded });
    try {
      seeded.configure({ share429: 0.3, retryAfter: 'mixed', retryAfterSeconds: 2 });
      const forms = new Set<string>();
      let count429 = 0;
      for (let i = 0; i < 200; i += 1) {
        const response = await fetch(`${server.url}/v1/projects/p1/items?limit=1`, {
          headers: auth(),
        });
        expect(response.status === 429, `request ${i}`).toBe(expected[i]);
        if (response.status !== 429) continue;
        count429 += 1;
        const header = response.headers.get('retry-after');
        const waitMs = parseRetryAfter(header, clock.now());
        expect(waitMs, `Retry-After ${header}`).toBeDefined();
        expect(waitMs!).toBeGreaterThanOrEqual(2000);
        expect(waitMs!).toBeLessThanOrEqual(3000);
        forms.add(/^\d+$/.test(header!) ? 'seconds' : 'date');
        expect(((await response.json()) as { error: { code: string } }).error.code).toBe(
          'RATE_LIMITED',
        );
      }
      expect(count429).toBe(expected.filter(Boolean).length);
      expect(count429).toBeGreaterThan(40);
      expect(count429).toBeLessThan(80);
      expect(forms).toEqual(new Set(['seconds', 'date']));
    } finally {
      await server.close();
      faults.reset();
    }
  });

  it('rate-limits per token with Retry-After', async () => {
    faults.configure({ rateLimit: { requestsPerSecond: 2, burst: 2 }, retryAfter: 'seconds' });
    try {
      expect((await health()).status).toBe(200);
      expect((await health()).status).toBe(200);
      const limited = await health();
      expect(limited.status).toBe(429);
      expect(limited.headers.get('retry-after')).toBe('1');
      // Another token has its own bucket.
      const other = await fetch(`${t.url}/v1/projects/p2/items`, { headers: auth('token-p2') });
      expect(other.status).toBe(200);
      await clock.advance(500);
      expect((await health()).status).toBe(200);
      faults.configure({ retryAfter: 'date' });
      const dated = await health();
      expect(dated.status).toBe(429);
      expect(parseRetryAfter(dated.headers.get('retry-after'), clock.now())).toBeGreaterThan(0);
    } finally {
      faults.reset();
    }
  });

  it('answers shares of 500 and 503 (503 with Retry-After)', async () => {
    faults.configure({ share500: 1 });
    expect((await health()).status).toBe(500);
    faults.configure({ share500: 0, share503: 1 });
    const unavailable = await health();
    expect(unavailable.status).toBe(503);
    expect(unavailable.headers.get('retry-after')).toMatch(/^\d+$/);
    faults.reset();
  });

  it('resets connections', async () => {
    faults.configure({ shareReset: 1 });
    await expect(health()).rejects.toThrow();
    faults.reset();
    expect((await health()).status).toBe(200);
  });

  it('adds latency on the injected clock', async () => {
    faults.configure({ latencyMs: 5000 });
    try {
      const pending = health();
      while (clock.pendingTimers === 0) await new Promise((resolve) => setImmediate(resolve));
      await clock.advance(5000);
      expect((await pending).status).toBe(200);
    } finally {
      faults.reset();
    }
  });

  it('malforms listings', async () => {
    faults.configure({ shareMalformedListing: 1 });
    const response = await health();
    expect(response.status).toBe(200);
    await expect(response.json()).rejects.toThrow();
    faults.reset();
  });

  it('is configured at run time through the admin route, guarded by its own token', async () => {
    const url = `${t.url}/v1/admin/faults`;
    expect((await fetch(url)).status).toBe(401);
    expect((await fetch(url, { headers: auth() })).status).toBe(401);
    const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
    const set = await fetch(url, {
      method: 'PUT',
      headers: { ...admin, 'content-type': 'application/json' },
      body: JSON.stringify({ share503: 1 }),
    });
    expect(set.status).toBe(200);
    expect(((await set.json()) as { share503: number }).share503).toBe(1);
    expect((await health()).status).toBe(503);
    const bad = await fetch(url, {
      method: 'PUT',
      headers: admin,
      body: JSON.stringify({ share500: 2 }),
    });
    expect(bad.status).toBe(400);
    expect((await fetch(url, { method: 'DELETE', headers: admin })).status).toBe(200);
    expect((await health()).status).toBe(200);
    expect(
      ((await (await fetch(url, { headers: admin })).json()) as { share503: number }).share503,
    ).toBe(0);
  });

  it('validates settings with a TypeError showing the bad value', () => {
    expect(() => new FaultInjector({ settings: { share429: 1.5 } })).toThrow(/share429.*1\.5/);
    expect(() => new FaultInjector({ settings: { share429: 0.6, share500: 0.6 } })).toThrow(
      TypeError,
    );
    expect(() => faults.configure({ nope: 1 })).toThrow(/unknown fault setting/);
  });
});
