import { randomBytes } from 'node:crypto';
import { createWriteStream, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, parseSize, seededRandom, systemRandom } from '@upsync/core';
import {
  FaultInjector,
  SqliteStorage,
  TokenRegistry,
  UpsyncServer,
  type FaultSettings,
} from '@upsync/server';
import { registerCommand, type CliIo } from './main.ts';

const usage = `Usage: upsync serve [options]

Runs the reference server (the upsync HTTP protocol) until SIGINT or SIGTERM.

Options:
  --port N                 port to listen on (default 8787; 0 picks a free one)
  --host HOST              address to bind (default 127.0.0.1)
  --data DIR               data folder: SQLite metadata and body files (default ./.upsync-server/)
  --tokens FILE            JSON {"<token>": ["project", ...]}; "*" allows every project.
                           Else UPSYNC_SERVER_TOKENS holds the same JSON; with neither, a
                           random dev token allowed every project is printed once.
  --max-body SIZE          largest PUT body, like 64MiB or 1GiB (default 64MiB)
  --log FILE|-|off         request log, one JSON line per request (default -: stdout)
  --admin-token-file FILE  enables /v1/admin/faults guarded by the token in FILE
                           (or UPSYNC_SERVER_ADMIN_TOKEN)

Fault injection (off by default; for tests, demos and benchmarks):
  --fault-rate-limit R[/B] per-token limit: R requests/s, burst B; over it, 429 + Retry-After
  --fault-429 SHARE        share (0 to 1) of requests answered 429 with Retry-After
  --fault-500 SHARE        share answered 500
  --fault-503 SHARE        share answered 503 with Retry-After
  --fault-reset SHARE      share whose connection is reset
  --fault-latency MS       latency added to every project request
  --fault-malformed-listing SHARE  share of listings answered with broken JSON
  --fault-retry-after seconds|date|mixed  the Retry-After form (default seconds)
  --fault-seed N           seed the fault choices, so a run repeats exactly
  --help                   show this help

Examples:
  upsync serve                                    a dev server; its token is printed once
  upsync serve --port 9000 --data /srv/upsync --tokens tokens.json
  upsync serve --port 0 --fault-rate-limit 50/10 --fault-503 0.05 --fault-seed 7
`;

const options = {
  port: { type: 'string' },
  host: { type: 'string' },
  data: { type: 'string' },
  tokens: { type: 'string' },
  'max-body': { type: 'string' },
  log: { type: 'string' },
  'admin-token-file': { type: 'string' },
  'fault-rate-limit': { type: 'string' },
  'fault-429': { type: 'string' },
  'fault-500': { type: 'string' },
  'fault-503': { type: 'string' },
  'fault-reset': { type: 'string' },
  'fault-latency': { type: 'string' },
  'fault-malformed-listing': { type: 'string' },
  'fault-retry-after': { type: 'string' },
  'fault-seed': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof options }>>['values'];

function parseFlags(args: string[]): Values {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new ConfigError(`${(error as Error).message}. Run "upsync serve --help".`);
  }
}

function integer(flag: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) {
    throw new ConfigError(
      `--${flag} must be an integer from ${min} to ${max}, got ${JSON.stringify(text)}`,
    );
  }
  return value;
}

function share(flag: string, text: string): number {
  const value = Number(text);
  if (text.trim() === '' || !(value >= 0 && value <= 1)) {
    throw new ConfigError(`--${flag} must be a number from 0 to 1, got ${JSON.stringify(text)}`);
  }
  return value;
}

function readSecretFile(flag: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(
      `--${flag}: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
}

/** The tokens from --tokens, else UPSYNC_SERVER_TOKENS, else undefined (dev mode). */
function loadTokens(file: string | undefined, env: string | undefined): TokenRegistry | undefined {
  const [source, text] =
    file !== undefined
      ? [file, readSecretFile('tokens', file)]
      : env !== undefined && env.trim() !== ''
        ? ['UPSYNC_SERVER_TOKENS', env]
        : [undefined, undefined];
  if (source === undefined || text === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not the parser's message: it may quote part of a token.
    throw new ConfigError(`${source} is not valid JSON (expected {"<token>": ["project", ...]})`);
  }
  try {
    const registry = new TokenRegistry({ tokens: parsed as Record<string, string[]> });
    if (registry.size === 0) throw new TypeError('it lists no tokens');
    return registry;
  } catch (error) {
    throw new ConfigError(`${source}: ${(error as Error).message}`);
  }
}

function faultSettings(values: Values): Partial<FaultSettings> {
  const settings: Partial<FaultSettings> = {};
  const rate = values['fault-rate-limit'];
  if (rate !== undefined) {
    const match = /^(\d+(?:\.\d+)?)(?:\/(\d+))?$/.exec(rate);
    if (!match || Number(match[1]) <= 0) {
      throw new ConfigError(
        `--fault-rate-limit must look like 10 or 10/20 (rate/burst), got ${JSON.stringify(rate)}`,
      );
    }
    const requestsPerSecond = Number(match[1]);
    const burst =
      match[2] === undefined ? Math.max(1, Math.ceil(requestsPerSecond)) : Number(match[2]);
    if (burst < 1) throw new ConfigError('--fault-rate-limit burst must be at least 1');
    settings.rateLimit = { requestsPerSecond, burst };
  }
  const shares = [
    ['fault-429', 'share429'],
    ['fault-500', 'share500'],
    ['fault-503', 'share503'],
    ['fault-reset', 'shareReset'],
    ['fault-malformed-listing', 'shareMalformedListing'],
  ] as const;
  for (const [flag, name] of shares) {
    const text = values[flag];
    if (text !== undefined) settings[name] = share(flag, text);
  }
  if (values['fault-latency'] !== undefined) {
    settings.latencyMs = integer('fault-latency', values['fault-latency'], 0, 600_000);
  }
  const form = values['fault-retry-after'];
  if (form !== undefined) {
    if (form !== 'seconds' && form !== 'date' && form !== 'mixed') {
      throw new ConfigError(
        `--fault-retry-after must be seconds, date or mixed, got ${JSON.stringify(form)}`,
      );
    }
    settings.retryAfter = form;
  }
  return settings;
}

export interface ServeOptions {
  env?: NodeJS.ProcessEnv;
  /** Resolves when the server should stop; default: the first SIGINT or SIGTERM. */
  stopSignal?: AbortSignal;
  /** Called once listening, with the URL (tests use it to find port 0's port). */
  onListening?: (url: string) => void;
}

/** `upsync serve`: returns the exit code once stopped. */
export async function serve(
  args: string[],
  io: CliIo,
  serveOptions: ServeOptions = {},
): Promise<number> {
  const values = parseFlags(args);
  if (values.help) {
    io.stdout(usage);
    return 0;
  }
  const env = serveOptions.env ?? process.env;
  const port = integer('port', values.port ?? '8787', 0, 65535);
  const host = values.host ?? '127.0.0.1';
  const dataDir = values.data ?? './.upsync-server/';
  if (/^postgres(ql)?:\/\//i.test(dataDir)) {
    throw new ConfigError('--data postgres://... is not supported yet; give a folder');
  }
  let maxBodyBytes: number;
  try {
    maxBodyBytes = parseSize(values['max-body'] ?? '64MiB');
  } catch (error) {
    throw new ConfigError(`--max-body: ${(error as Error).message}`);
  }
  let tokens = loadTokens(values.tokens, env.UPSYNC_SERVER_TOKENS);
  let devToken: string | undefined;
  if (!tokens) {
    devToken = randomBytes(24).toString('base64url');
    tokens = new TokenRegistry({ tokens: { [devToken]: ['*'] } });
  }
  const adminFile = values['admin-token-file'];
  const adminToken =
    adminFile !== undefined
      ? readSecretFile('admin-token-file', adminFile).trim()
      : env.UPSYNC_SERVER_ADMIN_TOKEN?.trim() || undefined;
  if (adminToken !== undefined && !/^[\x21-\x7e]{16,4096}$/.test(adminToken)) {
    throw new ConfigError('the admin token must be 16 to 4096 visible ASCII characters');
  }
  const seedText = values['fault-seed'];
  const random =
    seedText === undefined
      ? systemRandom
      : seededRandom(integer('fault-seed', seedText, 0, 2 ** 32 - 1));
  let faults: FaultInjector;
  try {
    faults = new FaultInjector({ settings: faultSettings(values), random });
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError((error as Error).message);
  }
  const logTarget = values.log ?? '-';
  const logStream =
    logTarget === 'off'
      ? undefined
      : logTarget === '-'
        ? undefined
        : createWriteStream(logTarget, { flags: 'a' });
  const requestLog =
    logTarget === 'off'
      ? null
      : logStream
        ? (line: string) => void logStream.write(`${line}\n`)
        : (line: string) => io.stdout(`${line}\n`);

  let storage: SqliteStorage;
  try {
    storage = new SqliteStorage({ dir: dataDir });
  } catch (error) {
    throw new ConfigError(
      `--data ${dataDir}: cannot open the data folder: ${(error as Error).message}`,
    );
  }
  const server = new UpsyncServer({
    storage,
    tokens,
    maxBodyBytes,
    faults,
    requestLog,
    ...(adminToken === undefined ? {} : { adminToken }),
    onError: (error) => io.stderr(`upsync serve: ${String((error as Error)?.stack ?? error)}\n`),
  });
  let url: string;
  try {
    ({ url } = await server.listen({ port, host }));
  } catch (error) {
    await server.close();
    const code = (error as NodeJS.ErrnoException).code;
    if (
      code === 'EADDRINUSE' ||
      code === 'EACCES' ||
      code === 'EADDRNOTAVAIL' ||
      code === 'ENOTFOUND'
    ) {
      throw new ConfigError(`cannot listen on ${host}:${port}: ${code}`);
    }
    throw error;
  }
  io.stderr(
    `upsync serve: listening on ${url} (data ${dataDir}, max body ${maxBodyBytes} bytes)\n`,
  );
  if (devToken !== undefined) {
    // Printed once, here; it is never logged or written anywhere.
    io.stderr(`upsync serve: no tokens given; dev token (every project): ${devToken}\n`);
  }
  serveOptions.onListening?.(url);

  await new Promise<void>((resolve) => {
    if (serveOptions.stopSignal) {
      if (serveOptions.stopSignal.aborted) resolve();
      serveOptions.stopSignal.addEventListener('abort', () => resolve(), { once: true });
      return;
    }
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  io.stderr('upsync serve: stopping: finishing requests in flight\n');
  await server.close();
  if (logStream) await new Promise<void>((resolve) => logStream.end(resolve));
  io.stderr('upsync serve: stopped\n');
  return 0;
}

registerCommand('serve', 'run the reference server (upsync HTTP protocol)', (args, io) =>
  serve(args, io),
);
