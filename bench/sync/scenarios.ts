// The scenarios and their sizes: full (the figures) and quick (a smoke run).
import type { Contender } from './contenders.ts';

export type ScenarioId =
  | 'initial-small'
  | 'resync-unchanged'
  | 'resync-changed'
  | 'initial-large'
  | 'rate-limited'
  | 'huge-file';

/** Scenarios run together: the three small-file ones share each round's server. */
export type GroupId = 'small' | 'large' | 'rate-limited' | 'huge';

export interface FilesSpec {
  readonly files: number;
  readonly bytes: number;
  readonly rounds: number;
  readonly contenders: readonly Contender[];
  /** Fewer rounds for a slow contender (it runs in the first N rounds only). */
  readonly roundsOf?: Partial<Record<Contender, number>>;
}

export interface BenchConfig {
  readonly quick: boolean;
  /** Initial sync, then a re-sync unchanged, then one with `changedShare` of the files changed. */
  readonly small: FilesSpec & { readonly changedShare: number };
  readonly large: FilesSpec;
  readonly rateLimited: FilesSpec & { readonly ratePerSec: number; readonly burst: number };
  readonly huge: FilesSpec;
  /** Groups to run; all when undefined. */
  readonly only?: ReadonlySet<GroupId>;
  /** When set, one extra upsync initial-small run (not measured) writes a CPU profile here. */
  readonly cpuProfileDir?: string;
}

const ALL: readonly Contender[] = ['upsync', 'ceiling', 'naive', 'hand-rolled'];
const KiB = 1024;
const MiB = 1024 * KiB;

export const FULL: BenchConfig = {
  quick: false,
  // The naive client takes over a minute per round here: two rounds of it are enough.
  small: {
    files: 10_000,
    bytes: 4 * KiB,
    rounds: 3,
    contenders: ALL,
    changedShare: 0.01,
    roundsOf: { naive: 2 },
  },
  large: { files: 200, bytes: MiB, rounds: 3, contenders: ALL },
  // Without retries the ceiling and the naive client only fail here; the issue compares
  // upsync with the hand-rolled client.
  rateLimited: {
    files: 2_000,
    bytes: KiB,
    rounds: 1,
    contenders: ['upsync', 'hand-rolled'],
    ratePerSec: 50,
    burst: 10,
  },
  huge: { files: 1, bytes: 1024 * MiB, rounds: 1, contenders: ALL },
};

export const QUICK: BenchConfig = {
  quick: true,
  small: { ...FULL.small, files: 200, rounds: 1 },
  large: { ...FULL.large, files: 10, bytes: 256 * KiB, rounds: 1 },
  rateLimited: { ...FULL.rateLimited, files: 40 },
  huge: { ...FULL.huge, bytes: 8 * MiB },
};

const GROUPS: readonly GroupId[] = ['small', 'large', 'rate-limited', 'huge'];

/** BENCH_QUICK=1 for the smoke sizes; BENCH_ONLY=small,huge to run some groups; BENCH_CPU_PROF=DIR. */
export function configFromEnv(env: NodeJS.ProcessEnv): BenchConfig {
  const base = env.BENCH_QUICK === '1' ? QUICK : FULL;
  let only: Set<GroupId> | undefined;
  if (env.BENCH_ONLY) {
    only = new Set();
    for (const name of env.BENCH_ONLY.split(',').map((part) => part.trim())) {
      if (!(GROUPS as readonly string[]).includes(name)) {
        throw new Error(`BENCH_ONLY: unknown group ${JSON.stringify(name)} (${GROUPS.join(', ')})`);
      }
      only.add(name as GroupId);
    }
  }
  return {
    ...base,
    ...(only ? { only } : {}),
    ...(env.BENCH_CPU_PROF ? { cpuProfileDir: env.BENCH_CPU_PROF } : {}),
  };
}
