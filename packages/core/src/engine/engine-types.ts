// The types the engine's stages share: what a push takes, what a delivery
// ends as, the events and the status snapshot.
import type { Outcome } from '../stats/stats.ts';
import type { Lane, PendingBody } from '../outbox/outbox-store.ts';
import type { RemoteBody } from '../remote/remote.ts';

/** A file reference as the outbox keeps it: the content is read when the send starts. */
export type FileRef = Extract<PendingBody, { type: 'file' }>;

/**
 * What `push` takes as content: bytes, a string (UTF-8), a file reference, or
 * null (and `{ delete: true }`) for a tombstone.
 */
export type PushBody = Uint8Array | string | FileRef | null;

export interface PushOptions {
  /** Default `normal`. `immediate` goes at once, ahead of everything, and can be awaited. */
  readonly lane?: Lane;
  /** Never coalesced with another change of its key; sent in push order. */
  readonly ordered?: boolean;
  /** Keys whose earlier versions must be sent (or leave the outbox) first. */
  readonly dependsOn?: readonly string[];
  /** The caller knows the content is new (run mode, just written): no existence check. */
  readonly knownNew?: boolean;
  readonly contentType?: string;
  /** A tombstone, the same as a null body. */
  readonly delete?: boolean;
  readonly signal?: AbortSignal;
}

/** How one version ended, for an awaited push. */
export interface Delivery {
  readonly key: string;
  readonly seq: number;
  /** `coalesced`: a newer version of the key replaced it before it was sent. */
  readonly outcome: Outcome | 'coalesced';
  readonly deadLettered: boolean;
  /** Why it did not arrive, for errored and timedOut. */
  readonly error?: string;
}

export interface PushReceipt {
  readonly key: string;
  readonly seq: number;
  readonly idempotencyKey: string;
  /** Immediate lane only: settles (never rejects) with the version's delivery. */
  readonly delivered?: Promise<Delivery>;
}

/**
 * Reads file references for the dispatcher. Node's folder source provides it;
 * core never opens files itself.
 */
export interface FileAccess {
  /** The body to send; `open()` reads the file as it is when the send starts. */
  open(ref: FileRef): RemoteBody;
  /** The file's reference now (size, mtime, digest), or null when it is gone. */
  refresh(ref: FileRef, options: { signal?: AbortSignal }): Promise<FileRef | null>;
}

export type PauseReason = 'user' | 'auth' | 'project';

export interface PauseInfo {
  readonly reason: PauseReason;
  readonly status: number | null;
  /** One clear line for the user, never the token. */
  readonly message: string;
}

export interface OutcomeEvent {
  readonly key: string;
  readonly seq: number;
  readonly outcome: Outcome;
  readonly deadLettered: boolean;
  readonly status: number | null;
  readonly error: string | null;
}

/** Every state change of the engine, by name. */
export interface EngineEvents {
  accepted: { key: string; seq: number; lane: Lane; kind: 'put' | 'delete' };
  coalesced: { key: string; seq: number; by: number };
  sending: { key: string; seq: number; attempt: number };
  /**
   * A version waits to be tried again. `resend` is false for a refusal that
   * sent nothing (an open breaker, a host paused by a 503's Retry-After).
   */
  retrying: {
    key: string;
    seq: number;
    attempt: number;
    delayMs: number;
    error: string;
    resend: boolean;
  };
  outcome: OutcomeEvent;
  listing: { state: 'loaded'; items: number } | { state: 'failed'; error: string };
  paused: PauseInfo;
  resumed: { reason: PauseReason };
  stopped: { timedOut: number };
}

export interface EngineStatus {
  /** Started, not paused, not shut down. */
  readonly enabled: boolean;
  readonly paused: PauseInfo | null;
  /** Rows in the outbox's `pending`, in-flight ones included. */
  readonly pending: number;
  /** Sends (and existence checks) running now. */
  readonly inFlight: number;
  /** Changes waiting in the scheduler for their window. */
  readonly buffered: number;
  readonly deadLetters: number;
  readonly droppedDeadLetters: number;
  readonly lastSyncAtMs: number | null;
  readonly consecutiveFailures: number;
  readonly breaker: 'closed' | 'open' | 'half-open';
  /** Versions waiting in backoff for their next attempt. */
  readonly retrying: number;
}
