// The machine a run was measured on, written beside the figures.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { arch, cpus, loadavg, release, totalmem, type } from 'node:os';

export interface Machine {
  readonly cpuModel: string;
  readonly cores: number;
  readonly memoryBytes: number;
  readonly os: string;
  readonly node: string;
  readonly date: string;
  /** 1-minute load average when the run started: the machine is shared, so say how busy it was. */
  readonly loadAverageAtStart: number;
  /** The commit measured, and the files that differed from it (others work in the same tree). */
  readonly git: { readonly commit: string; readonly modified: readonly string[] } | null;
}

function gitState(): Machine['git'] {
  try {
    const run = (args: string[]) => execFileSync('git', args, { encoding: 'utf8' }).trim();
    const modified = run(['status', '--porcelain', '--untracked-files=no'])
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => line.slice(3));
    return { commit: run(['rev-parse', 'HEAD']), modified };
  } catch {
    return null;
  }
}

function distribution(): string | undefined {
  try {
    return /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

export function describeMachine(now = new Date()): Machine {
  const list = cpus();
  const distro = distribution();
  return {
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    memoryBytes: totalmem(),
    os: `${distro ? `${distro}, ` : ''}${type()} ${release()} ${arch()}`,
    node: process.version,
    date: now.toISOString(),
    loadAverageAtStart: Math.round(loadavg()[0]! * 100) / 100,
    git: gitState(),
  };
}
