// The composed transport against a simulated rate-limited server, on simulated
// time: protocol counts (successes per simulated second, 429s per request),
// not wall-clock timing.
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../time/manual-clock.ts';
import { composeTransport, type ComposeTransportOptions } from './compose-transport.ts';
import { fakeResponse } from './fake-transport.ts';
import type { HttpRequest, HttpTransport } from './http-transport.ts';
import { TransportMonitor, type HostPacing } from './transport-monitor.ts';

interface Scenario {
  /** The server's token bucket. */
  limitPerSec: number;
  serverBurst: number;
  /** Each request's time from send to answer. */
  latencyMs: number;
  senders: number;
  requests: number;
  options?: Omit<ComposeTransportOptions, 'clock' | 'monitor'>;
}

interface Outcome {
  successes: number;
  throttled: number;
  total: number;
  /** When the last request succeeded, simulated ms from the start. */
  endMs: number;
  /** When each request reached the server. */
  arrivals: number[];
  /** The host's pacing, sampled at every request. */
  samples: HostPacing[];
}

/** A server limited by a token bucket, answering 429 with `Retry-After: 1` beyond it. */
function limitedServer(clock: ManualClock, scenario: Scenario, arrivals: number[]): HttpTransport {
  let tokens = scenario.serverBurst;
  let refilledAtMs = clock.now();
  return async () => {
    const nowMs = clock.now();
    arrivals.push(nowMs);
    tokens = Math.min(
      scenario.serverBurst,
      tokens + ((nowMs - refilledAtMs) * scenario.limitPerSec) / 1000,
    );
    refilledAtMs = nowMs;
    const accepted = tokens >= 1 - 1e-9;
    if (accepted) tokens -= 1;
    await clock.sleep(scenario.latencyMs);
    return accepted
      ? fakeResponse({ status: 201 })
      : fakeResponse({ status: 429, headers: { 'retry-after': '1' } });
  };
}

/**
 * `senders` loops share `requests` PUTs; each sends one, and after a 429 waits
 * its Retry-After and sends it again, as the engine does (one transport
 * attempt per engine attempt).
 */
async function simulate(scenario: Scenario): Promise<Outcome> {
  const clock = new ManualClock();
  const monitor = new TransportMonitor();
  const arrivals: number[] = [];
  const samples: HostPacing[] = [];
  const send = composeTransport(limitedServer(clock, scenario, arrivals), {
    retry: false,
    concurrency: { max: 16 },
    ...scenario.options,
    clock,
    monitor,
  });
  let next = 0;
  let successes = 0;
  let throttled = 0;
  let endMs = 0;
  const sender = async (): Promise<void> => {
    while (next < scenario.requests) {
      const n = next++;
      const put: HttpRequest = {
        method: 'PUT',
        url: `http://api.test/v1/projects/p/items/${n}`,
        headers: { 'idempotency-key': `key-${n}` },
        body: new Uint8Array(1024),
      };
      for (;;) {
        const response = await send(put);
        await response.dump();
        const [pacing] = monitor.snapshot();
        if (pacing) samples.push(pacing);
        if (response.status !== 429) break;
        throttled++;
        await clock.sleep(Number(response.headers['retry-after']) * 1000);
      }
      successes++;
      endMs = clock.now();
    }
  };
  const done = Promise.all(Array.from({ length: scenario.senders }, () => sender()));
  await clock.runAll(1_000_000);
  await done;
  return { successes, throttled, total: successes + throttled, endMs, arrivals, samples };
}

/** The most arrivals in any window of `windowMs` (a sliding window over sorted times). */
function mostInWindow(arrivals: readonly number[], windowMs: number): number {
  let most = 0;
  let start = 0;
  for (let end = 0; end < arrivals.length; end++) {
    while ((arrivals[end] ?? 0) - (arrivals[start] ?? 0) >= windowMs) start++;
    most = Math.max(most, end - start + 1);
  }
  return most;
}

describe('adaptive pacing against a rate-limited server (simulated time)', () => {
  it('finds a 50/s limit it was not told: >= 95% of it in successes, <= 2% of requests throttled', async () => {
    const outcome = await simulate({
      limitPerSec: 50,
      serverBurst: 10,
      latencyMs: 1,
      senders: 16,
      requests: 2000,
    });
    const successPerSec = outcome.successes / (outcome.endMs / 1000);
    expect(outcome.successes).toBe(2000);
    expect(successPerSec).toBeGreaterThanOrEqual(0.95 * 50);
    expect(outcome.throttled / outcome.total).toBeLessThanOrEqual(0.02);
    // The pace came from the remote's answers.
    expect(outcome.samples.at(-1)).toMatchObject({ adaptive: true, ceilingPerSec: null });
    expect(outcome.samples.at(-1)?.ratePerSec).toBeGreaterThan(30);
  });

  it('never passes a ceiling of 20/s on a server that allows 50/s', async () => {
    const outcome = await simulate({
      limitPerSec: 50,
      serverBurst: 10,
      latencyMs: 1,
      senders: 16,
      requests: 400,
      options: { rateLimit: { ratePerSec: 20, burst: 1 } },
    });
    expect(outcome.throttled).toBe(0);
    expect(mostInWindow(outcome.arrivals, 1000)).toBeLessThanOrEqual(20);
    expect(Math.max(...outcome.samples.map((s) => s.ratePerSec ?? Infinity))).toBe(20);
    // Paced at the ceiling, not below it: 400 requests at 20/s take 20 s.
    expect(outcome.endMs).toBeLessThanOrEqual(20_000);
  });

  it('keeps the ceiling through throttling when the server allows less (10/s)', async () => {
    const outcome = await simulate({
      limitPerSec: 10,
      serverBurst: 5,
      latencyMs: 1,
      senders: 16,
      requests: 300,
      options: { rateLimit: { ratePerSec: 20, burst: 1 } },
    });
    expect(outcome.successes).toBe(300);
    expect(mostInWindow(outcome.arrivals, 1000)).toBeLessThanOrEqual(20);
    expect(outcome.samples.every((s) => (s.ratePerSec ?? Infinity) <= 20)).toBe(true);
    expect(outcome.samples.at(-1)?.ratePerSec).toBeLessThan(20);
  });

  it('does not slow down a server that never throttles (200/s allowed, 160/s sent)', async () => {
    // 16 senders with 100 ms per request can send 160/s, under the server's 200/s.
    const outcome = await simulate({
      limitPerSec: 200,
      // Room for the 16 requests that all leave at once at the start.
      serverBurst: 20,
      latencyMs: 100,
      senders: 16,
      requests: 2000,
    });
    expect(outcome.throttled).toBe(0);
    // 125 rounds of 16 requests, 100 ms each: exactly as fast as the senders go.
    expect(outcome.endMs).toBe(12_500);
    expect(outcome.samples.every((s) => s.ratePerSec === null && s.tokens === null)).toBe(true);
  });
});
