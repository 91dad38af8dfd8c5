// A stand-in for the engine in the panel's unit tests: its events, a status to
// set by hand, pause and resume.
import {
  Emitter,
  Stats,
  TransportMonitor,
  type EngineEvents,
  type EngineStatus,
  type PauseInfo,
} from '@upsync/core';
import { ManualClock } from '@upsync/core/testing';

export class FakeEngine {
  readonly events = new Emitter<EngineEvents>();
  readonly clock = new ManualClock();
  readonly stats = new Stats({ clock: this.clock });
  readonly monitor = new TransportMonitor();
  status_: EngineStatus = {
    enabled: true,
    paused: null,
    pending: 0,
    inFlight: 0,
    buffered: 0,
    deadLetters: 0,
    droppedDeadLetters: 0,
    lastSyncAtMs: null,
    consecutiveFailures: 0,
    breaker: 'closed',
    retrying: 0,
  };
  flushes = 0;
  /** What flush() waits for; resolved at once by default. */
  flushGate: Promise<void> = Promise.resolve();

  on<K extends keyof EngineEvents>(event: K, listener: (payload: EngineEvents[K]) => void) {
    return this.events.on(event, listener);
  }

  status(): Promise<EngineStatus> {
    return Promise.resolve(this.status_);
  }

  flush(): Promise<void> {
    this.flushes++;
    return this.flushGate;
  }

  pause(): void {
    if (this.status_.paused) return;
    const info: PauseInfo = { reason: 'user', status: null, message: 'paused' };
    this.status_ = { ...this.status_, paused: info };
    this.events.emit('paused', info);
  }

  resume(): void {
    if (!this.status_.paused) return;
    const was = this.status_.paused;
    this.status_ = { ...this.status_, paused: null };
    this.events.emit('resumed', { reason: was.reason });
  }
}
