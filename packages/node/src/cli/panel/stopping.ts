import type { Engine, PauseInfo } from '@upsync/core';
import type { StopControl } from './stop-control.ts';

/** A pause that ends the command (a refused token, no such project); the user's own `p` does not. */
export function terminalPause(paused: PauseInfo | null): PauseInfo | null {
  return paused && paused.reason !== 'user' ? paused : null;
}

/** Resolves at the signal's abort (at once when it already is). */
export function whenAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

/**
 * Sends everything queued (engine.flush), and while the user keeps it paused
 * waits for the resume: flush gives up at a pause, the command must not.
 * Returns at a stop request too, with what is left still queued.
 */
export async function sendAll(
  engine: Pick<Engine, 'flush' | 'status' | 'on'>,
  stop: StopControl,
): Promise<void> {
  const stopped = whenAborted(stop.signal);
  for (;;) {
    await Promise.race([engine.flush(), stopped]);
    if (stop.requested) return;
    const status = await engine.status();
    if (status.paused?.reason !== 'user') return;
    let off = (): void => {};
    const resumed = new Promise<void>((resolve) => {
      off = engine.on('resumed', () => resolve());
    });
    // The resume may have come between the status read and the listener.
    if ((await engine.status()).paused === null) {
      off();
      continue;
    }
    await Promise.race([resumed, stopped]);
    off();
  }
}

/**
 * The versions being sent now, from the engine's events ('sending' starts an
 * attempt; 'outcome' or 'retrying' ends it): a stop waits for these only.
 */
export class SendsInFlight {
  readonly #seqs = new Set<number>();
  readonly #waiters = new Set<() => void>();
  readonly #off: Array<() => void>;

  constructor(engine: Pick<Engine, 'on'>) {
    const end = (event: { seq: number }): void => {
      if (!this.#seqs.delete(event.seq)) return;
      for (const waiter of this.#waiters) waiter();
    };
    this.#off = [
      engine.on('sending', (event) => void this.#seqs.add(event.seq)),
      engine.on('outcome', end),
      engine.on('retrying', end),
    ];
  }

  get size(): number {
    return this.#seqs.size;
  }

  /** Resolves once every send in flight now has ended (later ones are not waited for). */
  settled(): Promise<void> {
    const waiting = new Set(this.#seqs);
    if (waiting.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const check = (): void => {
        for (const seq of waiting) if (!this.#seqs.has(seq)) waiting.delete(seq);
        if (waiting.size > 0) return;
        this.#waiters.delete(check);
        resolve();
      };
      this.#waiters.add(check);
    });
  }

  close(): void {
    for (const off of this.#off) off();
  }
}

/**
 * `sync` stopped by the user: no new send is to start (the engine is paused),
 * the sends in flight get up to `timeoutMs` to end, and a second stop request
 * cuts that short. The shutdown that follows stops anything the pause let
 * through; what was not sent stays in the outbox.
 */
export async function letInFlightFinish(
  engine: Pick<Engine, 'pause'>,
  inFlight: SendsInFlight,
  stop: StopControl,
  timeoutMs: number,
): Promise<void> {
  engine.pause();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, timeoutMs);
  });
  try {
    await Promise.race([inFlight.settled(), timedOut, whenAborted(stop.nowSignal)]);
  } finally {
    clearTimeout(timer);
  }
}
