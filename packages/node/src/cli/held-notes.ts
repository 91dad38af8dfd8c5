import type { CliReport } from './print-report.ts';
import type { CliIo } from './main.ts';

/** Whether any request got an HTTP answer (of any status). */
export function remoteAnswered(requests: CliReport['requests']): boolean {
  return requests.total > requests.byStatus.network;
}

/**
 * A remote that never answered: nothing arrived, something did not, and not
 * one request got an HTTP status back (refused connections, timeouts, an open
 * breaker). `sync` then ends with one line instead of a per-item list that
 * says the same thing for every item.
 */
export function unreachable(report: CliReport): boolean {
  const arrived = report.created + report.updated + report.deleted + report.skipped;
  return (
    arrived === 0 && report.errored === 0 && report.timedOut > 0 && !remoteAnswered(report.requests)
  );
}

/**
 * Progress notes on stderr, held back until the remote has answered once: if it
 * never does, the command's one line about the unreachable remote is all the
 * user sees, rather than notes about a listing and sends that all failed alike.
 */
export class HeldNotes {
  readonly io: CliIo;
  readonly #target: CliIo;
  readonly #answered: () => boolean;
  #held: string[] | null = [];

  constructor(target: CliIo, answered: () => boolean) {
    this.#target = target;
    this.#answered = answered;
    this.io = {
      stdout: (text) => target.stdout(text),
      stderr: (text) => {
        if (this.#held && !this.#answered()) this.#held.push(text);
        else {
          this.release();
          target.stderr(text);
        }
      },
    };
  }

  /** Writes what was held and passes every later note straight through. */
  release(): void {
    const held = this.#held;
    this.#held = null;
    for (const text of held ?? []) this.#target.stderr(text);
  }

  /** Forgets what was held (the remote never answered; one line says so). */
  drop(): void {
    this.#held = null;
  }
}
