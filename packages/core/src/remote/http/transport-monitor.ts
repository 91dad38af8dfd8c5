/** One host's pacing as the transport sees it now: what a live panel shows. */
export interface HostPacing {
  readonly host: string;
  /** Requests per second the rate limiter lets through now; null when the host is not paced. */
  readonly ratePerSec: number | null;
  /** The user's `--rate` ceiling; null when none was set. */
  readonly ceilingPerSec: number | null;
  /** True when the rate follows the remote's answers (adaptive pacing). */
  readonly adaptive: boolean;
  /** Tokens in the bucket now; null when the host is not paced. */
  readonly tokens: number | null;
  /** Requests waiting for a token or a slot (the parts' counts are added up). */
  readonly queued: number;
  /** The adaptive bound on requests in flight now. */
  readonly concurrencyLimit: number;
  /** The user's `--concurrency` ceiling. */
  readonly concurrencyMax: number;
  readonly inFlight: number;
  readonly breaker: 'closed' | 'open' | 'half-open';
  /** When an open breaker lets a probe through (clock ms); null otherwise. */
  readonly breakerRetryAtMs: number | null;
}

/**
 * What one middleware knows of a host; the monitor merges the parts, a later
 * part's field over an earlier one's, except `queued`, which they add to.
 */
export type HostPacingPart = Partial<Omit<HostPacing, 'host'>>;

const DEFAULTS: Omit<HostPacing, 'host'> = {
  ratePerSec: null,
  ceilingPerSec: null,
  adaptive: false,
  tokens: null,
  queued: 0,
  concurrencyLimit: 0,
  concurrencyMax: 0,
  inFlight: 0,
  breaker: 'closed',
  breakerRetryAtMs: null,
};

/**
 * Lets a panel read the transport's per-host state without reaching into the
 * middleware: each layer registers a provider for a host when it first sees
 * it, and `snapshot()` asks them all. Reading is pull-only, so a panel that
 * refreshes twice a second costs the request path nothing.
 */
export class TransportMonitor {
  readonly #providers = new Map<string, Array<() => HostPacingPart>>();

  register(host: string, provider: () => HostPacingPart): void {
    let list = this.#providers.get(host);
    if (!list) {
      list = [];
      this.#providers.set(host, list);
    }
    list.push(provider);
  }

  /** Every host seen so far, in the order first seen. */
  snapshot(): HostPacing[] {
    return [...this.#providers].map(([host, providers]) => {
      let merged: HostPacing = { host, ...DEFAULTS };
      let queued = 0;
      for (const provider of providers) {
        const part = provider();
        queued += part.queued ?? 0;
        merged = { ...merged, ...part };
      }
      return { ...merged, queued };
    });
  }
}
