// The demo's reference server: in this process, on a free loopback port, with
// fault injection and a tally of what it answered (from its request log, kept
// in memory and never printed).
import { seededRandom } from '@upsync/core';
import {
  FaultInjector,
  SqliteStorage,
  TokenRegistry,
  UpsyncServer,
  type FaultSettings,
} from '@upsync/server';

/** What the server answered during one step of the demo. */
export interface StepTally {
  requests: number;
  byStatus: Map<number, number>;
  /** PUT requests answered 2xx, per item key: the sends that landed. */
  storedPuts: Map<string, number>;
  /** PUT requests, whatever the answer (refused ones included). */
  puts: number;
}

const emptyTally = (): StepTally => ({
  requests: 0,
  byStatus: new Map(),
  storedPuts: new Map(),
  puts: 0,
});

export function countStatus(tally: StepTally, status: number): number {
  return tally.byStatus.get(status) ?? 0;
}

export function storedPuts(tally: StepTally, keys?: readonly string[]): number {
  let sum = 0;
  for (const [key, count] of tally.storedPuts) {
    if (keys === undefined || keys.includes(key)) sum += count;
  }
  return sum;
}

export interface DemoServerOptions {
  readonly dataDir: string;
  readonly project: string;
  readonly token: string;
  readonly faults: Partial<FaultSettings>;
  readonly seed: number;
  /** Unexpected server errors (never request data or tokens). */
  readonly onError: (error: unknown) => void;
}

export interface DemoServer {
  readonly url: string;
  /** Requests are counted into the tally of the step named last. */
  step(name: string): StepTally;
  tally(name: string): StepTally;
  /** Every stored item of the project: key to SHA-256 hex. */
  contents(): Promise<Map<string, string>>;
  close(): Promise<void>;
}

const ITEM_PATH = /^\/v1\/projects\/[^/]+\/items\/(.+)$/;

function keyOfPath(path: string): string | undefined {
  const match = ITEM_PATH.exec(path);
  if (!match) return undefined;
  try {
    return match[1]!.split('/').map(decodeURIComponent).join('/');
  } catch {
    return undefined;
  }
}

export async function startDemoServer(options: DemoServerOptions): Promise<DemoServer> {
  const tokens = new TokenRegistry({ tokens: { [options.token]: [options.project] } });
  const tallies = new Map<string, StepTally>();
  let current = emptyTally();
  const storage = new SqliteStorage({ dir: options.dataDir });
  const server = new UpsyncServer({
    storage,
    tokens,
    faults: new FaultInjector({ settings: options.faults, random: seededRandom(options.seed) }),
    requestLog: (text) => {
      const entry = JSON.parse(text) as { method: string; path: string; status: number };
      current.requests++;
      current.byStatus.set(entry.status, (current.byStatus.get(entry.status) ?? 0) + 1);
      if (entry.method !== 'PUT') return;
      current.puts++;
      const key = keyOfPath(entry.path);
      if (key !== undefined && entry.status >= 200 && entry.status < 300) {
        current.storedPuts.set(key, (current.storedPuts.get(key) ?? 0) + 1);
      }
    },
    onError: options.onError,
  });
  let url: string;
  try {
    ({ url } = await server.listen({ port: 0, host: '127.0.0.1' }));
  } catch (error) {
    await server.close();
    throw error;
  }
  return {
    url,
    step(name) {
      current = emptyTally();
      tallies.set(name, current);
      return current;
    },
    tally: (name) => tallies.get(name) ?? emptyTally(),
    async contents() {
      const stored = new Map<string, string>();
      let after: string | undefined;
      for (;;) {
        const page = await storage.list(options.project, { after, prefix: undefined, limit: 1000 });
        for (const item of page.items) stored.set(item.key, item.sha256);
        if (page.next === null) return stored;
        after = page.next;
      }
    },
    close: () => server.close(),
  };
}
