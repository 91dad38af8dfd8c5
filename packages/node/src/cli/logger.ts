// The state folder's structured log, `<state>/upsync.log`: one JSON object a
// line (pino), written by the process that holds the folder's lock. The token
// is kept out by the logger itself, so no call site can leak it.
import { existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import type { Engine } from '@upsync/core';
import type { LogLevel } from './sync-options.ts';

export const LOG_FILE = 'upsync.log';

/** Past this size at open, the log moves to `upsync.log.1` (replacing the one before). */
export const MAX_LOG_BYTES = 10 * 1024 * 1024;

export const REDACTED = '[redacted]';

/** Fields whose value is a credential whatever it holds. */
const REDACT_PATHS = [
  'token',
  'authorization',
  'headers.authorization',
  'headers.Authorization',
  '*.token',
  '*.authorization',
  '*.headers.authorization',
  '*.headers.Authorization',
];

/**
 * Replaces every occurrence of the secrets in a text, both as they are and as
 * JSON escapes them (a token may hold `"` or `\`). An empty secret is ignored.
 */
export function secretScrubber(secrets: readonly string[]): (text: string) => string {
  const forms = new Set<string>();
  for (const secret of secrets) {
    if (secret === '') continue;
    forms.add(secret);
    forms.add(JSON.stringify(secret).slice(1, -1));
  }
  // Longest first: a form that contains another is replaced whole.
  const ordered = [...forms].sort((a, b) => b.length - a.length);
  return (text) => {
    let out = text;
    for (const form of ordered) if (out.includes(form)) out = out.replaceAll(form, REDACTED);
    return out;
  };
}

const MAX_DEPTH = 8;

/**
 * A copy of a log argument with the secrets scrubbed from every string in it.
 * Errors become plain objects (type, message, stack, code, status, cause),
 * which is how the log shows them anyway.
 */
function scrubValue(
  value: unknown,
  scrub: (text: string) => string,
  depth = 0,
  seen = new WeakSet<object>(),
): unknown {
  if (typeof value === 'string') return scrub(value);
  if (typeof value !== 'object' || value === null) return value;
  if (seen.has(value) || depth > MAX_DEPTH) return '[...]';
  seen.add(value);
  const next = (inner: unknown): unknown => scrubValue(inner, scrub, depth + 1, seen);
  if (value instanceof Error) {
    const extra = value as Error & { code?: unknown; status?: unknown };
    return {
      type: value.name,
      message: scrub(value.message),
      ...(value.stack === undefined ? {} : { stack: scrub(value.stack) }),
      ...(extra.code === undefined ? {} : { code: next(extra.code) }),
      ...(extra.status === undefined ? {} : { status: next(extra.status) }),
      ...(value.cause === undefined ? {} : { cause: next(value.cause) }),
    };
  }
  if (Array.isArray(value)) return value.map(next);
  if (value instanceof Uint8Array) return `[${value.byteLength} bytes]`;
  const copy: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) copy[key] = next(inner);
  return copy;
}

export interface StateLoggerOptions {
  readonly stateDir: string;
  readonly level: LogLevel;
  /** Strings that must never reach the file (the token). */
  readonly secrets: readonly string[];
  /** Fields on every line (command, pid). */
  readonly base?: Record<string, unknown>;
  /** Default {@link MAX_LOG_BYTES}. */
  readonly maxBytes?: number;
}

export interface StateLogger {
  readonly logger: Logger;
  readonly path: string;
  /** Writes what is buffered and closes the file. Idempotent. */
  close(): Promise<void>;
}

/** Moves a log past `maxBytes` to `<path>.1`; a failure only means the log keeps growing. */
function rotate(path: string, maxBytes: number): void {
  try {
    if (existsSync(path) && statSync(path).size > maxBytes) renameSync(path, `${path}.1`);
  } catch {
    // Not worth failing a sync over.
  }
}

/**
 * Opens `<stateDir>/upsync.log` for appending (asynchronous writes, flushed by
 * close()). `silent` opens no file. The token is kept out three ways: fields
 * named like credentials are censored (pino's redact), every string argument
 * and value is scrubbed before pino sees it (hooks.logMethod), and every
 * finished line is scrubbed again before it is written (hooks.streamWrite).
 */
export function openStateLogger(options: StateLoggerOptions): StateLogger {
  const path = join(options.stateDir, LOG_FILE);
  const disabled = (): StateLogger => ({
    logger: pino({ enabled: false }),
    path,
    close: () => Promise.resolve(),
  });
  if (options.level === 'silent') return disabled();
  try {
    mkdirSync(options.stateDir, { recursive: true });
  } catch {
    // The log is advisory: a folder it cannot go in does not end the command.
    return disabled();
  }
  rotate(path, options.maxBytes ?? MAX_LOG_BYTES);
  const scrub = secretScrubber(options.secrets);
  const destination = pino.destination({ dest: path, mkdir: true, sync: false, append: true });
  let failed = false;
  // A log that cannot be written must not take the command down with it.
  destination.on('error', () => {
    failed = true;
  });
  const logger = pino(
    {
      level: options.level,
      base: { pid: process.pid, ...options.base },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: REDACTED },
      // Errors arrive already scrubbed and flattened (logMethod); pino's own err serializer would retype them.
      serializers: { err: (value: unknown) => value },
      hooks: {
        logMethod(args, method) {
          const scrubbed = args.map((arg) => scrubValue(arg, scrub)) as Parameters<typeof method>;
          method.apply(this, scrubbed);
        },
        streamWrite: scrub,
      },
    },
    destination,
  );
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    // A late line (a send that settles after close) is dropped, not written to an ended file.
    logger.level = 'silent';
    closing ??= new Promise<void>((resolve) => {
      if (failed) {
        resolve();
        return;
      }
      destination.once('close', () => resolve());
      destination.once('error', () => resolve());
      destination.end();
    });
    return closing;
  };
  return { logger, path, close };
}

/** Logs the engine's events: the detail at debug, retries and state changes at info, failures at warn. */
export function logEngineEvents(engine: Engine, log: Logger): () => void {
  const offs = [
    engine.on('accepted', (event) => log.debug({ event: 'accepted', ...event }, 'accepted')),
    engine.on('coalesced', (event) => log.debug({ event: 'coalesced', ...event }, 'coalesced')),
    engine.on('sending', (event) => log.debug({ event: 'sending', ...event }, 'sending')),
    engine.on('retrying', (event) => log.info({ event: 'retrying', ...event }, 'retrying')),
    engine.on('outcome', (event) => {
      if (event.outcome === 'errored' || event.outcome === 'timedOut') {
        log.warn(
          { event: 'outcome', ...event },
          event.deadLettered ? 'dead-lettered' : event.outcome,
        );
      } else {
        log.debug({ event: 'outcome', ...event }, event.outcome);
      }
    }),
    engine.on('listing', (event) =>
      log.info({ event: 'listing', ...event }, `listing ${event.state}`),
    ),
    engine.on('paused', (event) => log.warn({ event: 'paused', ...event }, event.message)),
    engine.on('resumed', (event) => log.info({ event: 'resumed', ...event }, 'resumed')),
    engine.on('stopped', (event) => log.info({ event: 'stopped', ...event }, 'stopped')),
  ];
  return () => {
    for (const off of offs) off();
  };
}
