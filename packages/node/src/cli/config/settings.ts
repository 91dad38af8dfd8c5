import { z } from 'zod';
import { formatDuration, keyProblem, parseDuration } from '@upsync/core';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type CliCommand = 'sync' | 'run' | 'config';

/**
 * One setting, defined once for every layer: the flag, the environment
 * variable and the config file key all feed the same schema, so `"8"` from a
 * flag and `8` from the file are checked and coerced alike.
 */
export interface SettingDef<S extends z.ZodType = z.ZodType> {
  /** camelCase: the config file key. */
  readonly key: string;
  /** The flag without its dashes (kebab-case); undefined for none. */
  readonly flag: string | undefined;
  readonly short?: string;
  /** The commands whose command line takes the flag (`config` takes every flag). */
  readonly flagFor: readonly ('sync' | 'run')[];
  readonly env: string | undefined;
  readonly inFile: boolean;
  /** What parseArgs reads: booleans are presence flags (and `--no-NAME`). */
  readonly type: 'string' | 'boolean';
  readonly schema: S;
  /** What a wrong value is told it should be, when the schema has nothing more precise. */
  readonly allowed: string;
  /** The default as it would be written (run through the schema like any other value). */
  readonly default?: z.input<S>;
  /** Shown in help where the default is not a plain value. */
  readonly defaultText?: string;
  readonly required?: boolean;
  /** A path: relative values are taken from the cwd, or from the config file's folder. */
  readonly path?: boolean;
  /** How a given value is quoted in a message; the remote's may carry credentials. */
  readonly quote?: (raw: unknown) => string;
  /** How the checked value is shown (and written in `upsync config --json`). */
  show?(value: z.output<S>): string | number | boolean;
  readonly help: string;
}

const integer = (min: number, max: number) =>
  z
    .union([z.number(), z.string().trim().regex(/^\d+$/).transform(Number)])
    .pipe(z.int().min(min).max(max));

const positiveNumber = () =>
  z
    .union([
      z.number(),
      z
        .string()
        .trim()
        .regex(/^(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/)
        .transform(Number),
    ])
    .pipe(z.number().gt(0).max(Number.MAX_SAFE_INTEGER));

// A bare number is refused, as on the command line: seconds or milliseconds?
const duration = () =>
  z.string().transform((text, ctx) => {
    try {
      return parseDuration(text);
    } catch {
      ctx.issues.push({ code: 'custom', message: DURATION_ALLOWED, input: text });
      return z.NEVER;
    }
  });

const DURATION_ALLOWED = 'a duration like 500ms, 10s, 2m or 1h30m';

const boolean = () =>
  z.union([
    z.boolean(),
    z
      .string()
      .trim()
      .pipe(
        z.stringbool({
          truthy: ['true', '1', 'yes'],
          falsy: ['false', '0', 'no'],
          case: 'insensitive',
        }),
      ),
  ]);

const BOOLEAN_ALLOWED = 'true or false (also 1/0, yes/no)';

const pathText = () => z.string().refine((text) => text.trim() !== '');

const remoteUrl = z.string().transform((text, ctx) => {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    ctx.issues.push({ code: 'custom', message: REMOTE_ALLOWED, input: text });
    return z.NEVER;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    ctx.issues.push({
      code: 'custom',
      message: `${REMOTE_ALLOWED} (${url.protocol} is not http or https)`,
      input: text,
    });
    return z.NEVER;
  }
  if (url.username !== '' || url.password !== '') {
    ctx.issues.push({
      code: 'custom',
      message: 'a URL without credentials (the token goes in UPSYNC_TOKEN or a token file)',
      input: text,
    });
    return z.NEVER;
  }
  // Kept as given (less a trailing slash): the outbox scope is named by it.
  return text.replace(/\/+$/, '');
});

const REMOTE_ALLOWED = 'an http or https URL like https://sync.example.com';

/** Quotes a remote without the user:password part a bad one may carry. */
function quoteRemote(raw: unknown): string {
  return JSON.stringify(typeof raw === 'string' ? raw.replace(/\/\/[^/]*@/, '//***@') : raw);
}

const onlyKey = z.string().transform((key, ctx) => {
  const problem = keyProblem(key);
  if (problem !== undefined) {
    ctx.issues.push({
      code: 'custom',
      message: `a key the protocol takes (${problem})`,
      input: key,
    });
    return z.NEVER;
  }
  return key;
});

const showDuration = (ms: number): string => formatDuration(ms);

const COMMANDS = ['sync', 'run'] as const;

/** Every setting in the order help and `upsync config` list them. */
export const SETTINGS = {
  remote: {
    key: 'remote',
    flag: 'remote',
    flagFor: COMMANDS,
    env: 'UPSYNC_REMOTE',
    inFile: true,
    type: 'string',
    schema: remoteUrl,
    allowed: REMOTE_ALLOWED,
    required: true,
    quote: quoteRemote,
    help: "the server's base URL, e.g. https://sync.example.com",
  },
  project: {
    key: 'project',
    flag: 'project',
    flagFor: COMMANDS,
    env: 'UPSYNC_PROJECT',
    inFile: true,
    type: 'string',
    schema: z.string().regex(/^[A-Za-z0-9._-]{1,128}$/),
    allowed: '1 to 128 characters of A-Z a-z 0-9 . _ -',
    required: true,
    help: 'the project on the server (never taken from the folder name)',
  },
  tokenFile: {
    key: 'tokenFile',
    flag: 'token-file',
    flagFor: COMMANDS,
    env: 'UPSYNC_TOKEN_FILE',
    inFile: true,
    type: 'string',
    schema: pathText(),
    allowed: 'a file name',
    path: true,
    help: 'a file holding the token (else UPSYNC_TOKEN holds the token itself)',
  },
  state: {
    key: 'state',
    flag: 'state',
    flagFor: COMMANDS,
    env: 'UPSYNC_STATE',
    inFile: true,
    type: 'string',
    schema: pathText(),
    allowed: 'a folder name',
    path: true,
    defaultText: 'DIR/.upsync',
    help: 'the state folder: outbox and digest cache',
  },
  concurrency: {
    key: 'concurrency',
    flag: 'concurrency',
    flagFor: COMMANDS,
    env: 'UPSYNC_CONCURRENCY',
    inFile: true,
    type: 'string',
    schema: integer(1, 1024),
    allowed: 'an integer from 1 to 1024',
    default: 16,
    help: 'ceiling of requests in flight, adaptive below it',
  },
  rate: {
    key: 'rate',
    flag: 'rate',
    flagFor: COMMANDS,
    env: 'UPSYNC_RATE',
    inFile: true,
    type: 'string',
    schema: positiveNumber(),
    allowed: 'a number above 0 (requests per second)',
    defaultText: 'none',
    help: 'requests per second ceiling',
  },
  burst: {
    key: 'burst',
    flag: 'burst',
    flagFor: COMMANDS,
    env: 'UPSYNC_BURST',
    inFile: true,
    type: 'string',
    schema: integer(1, 100_000),
    allowed: 'an integer from 1 to 100000',
    defaultText: 'rate rounded up',
    help: 'requests let through at once under rate',
  },
  attempts: {
    key: 'attempts',
    flag: 'attempts',
    flagFor: COMMANDS,
    env: 'UPSYNC_ATTEMPTS',
    inFile: true,
    type: 'string',
    schema: integer(1, 1000),
    allowed: 'an integer from 1 to 1000',
    default: 5,
    help: 'attempts per change, the first included',
  },
  retryTime: {
    key: 'retryTime',
    flag: 'retry-time',
    flagFor: COMMANDS,
    env: 'UPSYNC_RETRY_TIME',
    inFile: true,
    type: 'string',
    schema: duration(),
    allowed: DURATION_ALLOWED,
    default: '2m',
    show: showDuration,
    help: 'retry time per change',
  },
  delete: {
    key: 'delete',
    flag: 'delete',
    flagFor: COMMANDS,
    env: 'UPSYNC_DELETE',
    inFile: true,
    type: 'boolean',
    schema: boolean(),
    allowed: BOOLEAN_ALLOWED,
    default: false,
    help: 'propagate deletions: a file gone from DIR is deleted on the remote',
  },
  json: {
    key: 'json',
    flag: 'json',
    flagFor: COMMANDS,
    env: 'UPSYNC_JSON',
    inFile: true,
    type: 'boolean',
    schema: boolean(),
    allowed: BOOLEAN_ALLOWED,
    default: false,
    help: 'print only the final report, as one JSON object, on stdout',
  },
  quiet: {
    key: 'quiet',
    flag: 'quiet',
    short: 'q',
    flagFor: COMMANDS,
    env: 'UPSYNC_QUIET',
    inFile: true,
    type: 'boolean',
    schema: boolean(),
    allowed: BOOLEAN_ALLOWED,
    default: false,
    help: 'only errors and the final one-line verdict',
  },
  verbose: {
    key: 'verbose',
    flag: 'verbose',
    flagFor: COMMANDS,
    env: 'UPSYNC_VERBOSE',
    inFile: true,
    type: 'boolean',
    schema: boolean(),
    allowed: BOOLEAN_ALLOWED,
    default: false,
    help: 'every outcome and retry as a plain line',
  },
  logLevel: {
    key: 'logLevel',
    flag: 'log-level',
    flagFor: COMMANDS,
    env: 'UPSYNC_LOG_LEVEL',
    inFile: true,
    type: 'string',
    schema: z.string().trim().toLowerCase().pipe(z.enum(LOG_LEVELS)),
    allowed: `one of ${LOG_LEVELS.join(', ')}`,
    default: 'info',
    help: "the state folder's log file",
  },
  debounce: {
    key: 'debounce',
    flag: 'debounce',
    flagFor: ['run'],
    env: 'UPSYNC_DEBOUNCE',
    inFile: true,
    type: 'string',
    schema: duration(),
    allowed: DURATION_ALLOWED,
    default: '10s',
    show: showDuration,
    help: 'run: per-file window between sends',
  },
  shutdownTimeout: {
    key: 'shutdownTimeout',
    flag: 'shutdown-timeout',
    flagFor: ['sync', 'run'],
    env: 'UPSYNC_SHUTDOWN_TIMEOUT',
    inFile: true,
    type: 'string',
    schema: duration(),
    allowed: DURATION_ALLOWED,
    default: '30s',
    show: showDuration,
    help: 'how long to wait for sends when stopped (sync: at the end)',
  },
  only: {
    key: 'only',
    flag: 'only',
    flagFor: ['sync'],
    env: undefined,
    inFile: false,
    type: 'string',
    schema: onlyKey,
    allowed: 'a key the protocol takes',
    help: 'sync: send one item (its relative path), checked with a HEAD',
  },
  config: {
    key: 'config',
    flag: 'config',
    flagFor: COMMANDS,
    env: 'UPSYNC_CONFIG',
    inFile: false,
    type: 'string',
    schema: pathText(),
    allowed: 'a file name',
    path: true,
    defaultText: 'DIR/upsync.config.json',
    help: 'the config file (it must exist when named)',
  },
} as const satisfies Record<string, SettingDef>;

export type SettingName = keyof typeof SETTINGS;

/** Each setting's checked value. */
export type SettingValues = {
  readonly [K in SettingName]: z.output<(typeof SETTINGS)[K]['schema']>;
};

export const SETTING_NAMES = Object.keys(SETTINGS) as SettingName[];

/** The definition of `name`, widened for code that treats every setting alike. */
export function settingDef(name: SettingName): SettingDef {
  return SETTINGS[name];
}

/** The token itself (UPSYNC_TOKEN or a token file's content): checked, never quoted. */
export const TOKEN_SCHEMA = z
  .string()
  .trim()
  .regex(/^[\x21-\x7e]+$/);
export const TOKEN_ALLOWED = 'visible ASCII characters without spaces';
