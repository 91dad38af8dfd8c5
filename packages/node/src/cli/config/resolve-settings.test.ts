import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { isUpsyncError } from '@upsync/core';
import { resolveSettings, type ResolvedSettings } from './resolve-settings.ts';
import { parseSyncOptions } from '../sync-options.ts';

const TOKEN = 'tok-3f9a7c-secret';
const made: string[] = [];

afterEach(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A folder (the cwd) holding the synced folder `dir`, with an optional config file in it. */
function workspace(file?: Record<string, unknown>): { cwd: string; dir: string } {
  const cwd = mkdtempSync(join(tmpdir(), 'upsync-settings-'));
  made.push(cwd);
  const dir = join(cwd, 'data');
  mkdirSync(dir);
  if (file !== undefined) writeFileSync(join(dir, 'upsync.config.json'), JSON.stringify(file));
  return { cwd, dir };
}

function resolveIn(
  cwd: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
  command: 'sync' | 'run' | 'config' = 'run',
): ResolvedSettings {
  const resolved = resolveSettings(command, ['data', ...args], env, { cwd });
  if (resolved === null) throw new Error('unexpected --help');
  return resolved;
}

/** The ConfigError message `run` throws, checked to be one line. */
function errorOf(action: () => unknown): string {
  try {
    action();
  } catch (error) {
    expect(isUpsyncError(error) && error.code === 'ERR_CONFIG').toBe(true);
    const message = (error as Error).message;
    expect(message.split('\n')).toHaveLength(1);
    return message;
  }
  throw new Error('expected a ConfigError');
}

// One setting of each kind, with a value for each layer (flag, env, file) and its default.
const KINDS = [
  {
    name: 'concurrency' as const,
    flag: ['--concurrency', '8'],
    env: { UPSYNC_CONCURRENCY: '4' },
    file: { concurrency: 2 },
    values: [8, 4, 2, 16],
  },
  {
    name: 'rate' as const,
    flag: ['--rate', '2.5'],
    env: { UPSYNC_RATE: '7' },
    file: { rate: '0.5' },
    values: [2.5, 7, 0.5, undefined],
  },
  {
    name: 'retryTime' as const,
    flag: ['--retry-time', '30s'],
    env: { UPSYNC_RETRY_TIME: '1m' },
    file: { retryTime: '1h30m' },
    values: [30_000, 60_000, 5_400_000, 120_000],
  },
  {
    name: 'debounce' as const,
    flag: ['--debounce', '500ms'],
    env: { UPSYNC_DEBOUNCE: '2s' },
    file: { debounce: '10m' },
    values: [500, 2_000, 600_000, 10_000],
  },
  {
    name: 'delete' as const,
    flag: ['--no-delete'],
    env: { UPSYNC_DELETE: 'yes' },
    file: { delete: false },
    values: [false, true, false, false],
  },
  {
    name: 'verbose' as const,
    flag: ['--verbose'],
    env: { UPSYNC_VERBOSE: '0' },
    file: { verbose: 'true' },
    values: [true, false, true, false],
  },
  {
    name: 'logLevel' as const,
    flag: ['--log-level', 'warn'],
    env: { UPSYNC_LOG_LEVEL: 'DEBUG' },
    file: { logLevel: 'trace' },
    values: ['warn', 'debug', 'trace', 'info'],
  },
  {
    name: 'project' as const,
    flag: ['--project', 'from-flag'],
    env: { UPSYNC_PROJECT: 'from-env' },
    file: { project: 'from-file' },
    values: ['from-flag', 'from-env', 'from-file', undefined],
  },
  {
    name: 'remote' as const,
    flag: ['--remote', 'https://flag.example.com/'],
    env: { UPSYNC_REMOTE: 'http://127.0.0.1:8787' },
    file: { remote: 'https://file.example.com/base/' },
    values: [
      'https://flag.example.com',
      'http://127.0.0.1:8787',
      'https://file.example.com/base',
      undefined,
    ],
  },
];

describe('resolveSettings: a flag beats the environment, which beats the file, which beats the default', () => {
  for (const kind of KINDS) {
    it(`${kind.name}`, () => {
      const [fromFlag, fromEnv, fromFile, fromDefault] = kind.values;
      const { cwd } = workspace(kind.file);
      const all = resolveIn(cwd, kind.flag, kind.env).settings[kind.name];
      expect(all.value).toEqual(fromFlag);
      expect(all.source.kind).toBe('flag');
      expect(all.overridden.map((source) => source.kind)).toEqual(['env', 'file']);

      const envAndFile = resolveIn(cwd, [], kind.env).settings[kind.name];
      expect(envAndFile.value).toEqual(fromEnv);
      expect(envAndFile.source).toEqual({
        kind: 'env',
        variable: Object.keys(kind.env)[0],
      });

      const fileOnly = resolveIn(cwd, []).settings[kind.name];
      expect(fileOnly.value).toEqual(fromFile);
      expect(fileOnly.source).toMatchObject({ kind: 'file', shown: 'data/upsync.config.json' });

      const { cwd: bare } = workspace();
      const none = resolveIn(bare, []).settings[kind.name];
      expect(none.value).toEqual(fromDefault);
      expect(none.source).toEqual({ kind: 'default' });
    });
  }

  it('reads a path from the cwd when it comes from a flag or a variable, from the file folder when from the file', () => {
    const { cwd, dir } = workspace({ state: 'state-in-file', tokenFile: '../token' });
    writeFileSync(join(cwd, 'token'), TOKEN);
    const fromFile = resolveIn(cwd, []);
    expect(fromFile.settings.state.value).toBe(join(dir, 'state-in-file'));
    expect(fromFile.token?.file).toBe(join(cwd, 'token'));
    expect(fromFile.token?.secret.reveal()).toBe(TOKEN);
    expect(resolveIn(cwd, ['--state', 's']).settings.state.value).toBe(join(cwd, 's'));
    expect(resolveIn(cwd, [], { UPSYNC_STATE: 'e' }).settings.state.value).toBe(join(cwd, 'e'));
    const { cwd: bare, dir: bareDir } = workspace();
    expect(resolveIn(bare, []).settings.state.value).toBe(join(bareDir, '.upsync'));
  });

  it('takes the file named by --config or UPSYNC_CONFIG instead of DIR/upsync.config.json', () => {
    const { cwd } = workspace({ attempts: 2 });
    writeFileSync(join(cwd, 'other.json'), JSON.stringify({ attempts: 9 }));
    writeFileSync(join(cwd, 'third.json'), JSON.stringify({ attempts: 7 }));
    expect(resolveIn(cwd, []).settings.attempts.value).toBe(2);
    const named = resolveIn(cwd, ['--config', 'other.json'], { UPSYNC_CONFIG: 'third.json' });
    expect(named.settings.attempts.value).toBe(9);
    expect(named.configFile).toMatchObject({ path: join(cwd, 'other.json'), found: true });
    const fromEnv = resolveIn(cwd, [], { UPSYNC_CONFIG: 'third.json' });
    expect(fromEnv.settings.attempts.value).toBe(7);
    expect(fromEnv.settings.config.source).toEqual({ kind: 'env', variable: 'UPSYNC_CONFIG' });
  });

  it('treats an empty variable as unset and ignores other UPSYNC_* variables', () => {
    const { cwd } = workspace({ concurrency: 3 });
    const resolved = resolveIn(cwd, [], {
      UPSYNC_CONCURRENCY: '  ',
      UPSYNC_PRINCIPAL: 'someone',
      UPSYNC_REQUIRE_SERVICES: 'whatever',
    });
    expect(resolved.settings.concurrency).toMatchObject({ value: 3, source: { kind: 'file' } });
  });

  it('coerces "8" and 8, "true" and true, alike in every layer', () => {
    const { cwd } = workspace({ concurrency: '8', delete: 'yes', attempts: 3 });
    const resolved = resolveIn(cwd, [], { UPSYNC_BURST: '12', UPSYNC_RATE: '3' });
    expect(resolved.settings.concurrency.value).toBe(8);
    expect(resolved.settings.delete.value).toBe(true);
    expect(resolved.settings.attempts.value).toBe(3);
    expect(resolved.settings.burst.value).toBe(12);
  });

  it('lets a higher layer settle quiet against verbose; on one layer both on is an error', () => {
    const { cwd } = workspace({ quiet: true });
    const resolved = resolveIn(cwd, ['--verbose']);
    expect(resolved.settings.verbose.value).toBe(true);
    expect(resolved.settings.quiet).toMatchObject({
      value: false,
      note: 'off: verbose from --verbose wins',
    });
    expect(errorOf(() => resolveIn(cwd, ['-q', '--verbose']))).toBe(
      'quiet (from --quiet) and verbose (from --verbose) cannot both be on',
    );
  });

  it('returns null for --help and lists missing required settings without throwing', () => {
    expect(resolveSettings('sync', ['--help'], {}, { cwd: workspace().cwd })).toBeNull();
    const { cwd } = workspace();
    expect(resolveIn(cwd, [], {}, 'config').missing).toEqual(['remote', 'project', 'token']);
  });
});

describe('resolveSettings: the token', () => {
  it("takes UPSYNC_TOKEN, and a --token-file flag over it, and UPSYNC_TOKEN over the file's tokenFile", () => {
    const { cwd } = workspace({ tokenFile: 'file-token' });
    writeFileSync(join(cwd, 'data', 'file-token'), 'from-file-setting');
    writeFileSync(join(cwd, 'flag-token'), '  from-flag \n');
    const env = { UPSYNC_TOKEN: TOKEN };
    expect(resolveIn(cwd, [], env).token).toMatchObject({
      source: { kind: 'env' },
      file: undefined,
    });
    expect(resolveIn(cwd, [], env).token?.secret.reveal()).toBe(TOKEN);
    expect(resolveIn(cwd, ['--token-file', 'flag-token'], env).token?.secret.reveal()).toBe(
      'from-flag',
    );
    expect(resolveIn(cwd, []).token?.secret.reveal()).toBe('from-file-setting');
  });

  it('refuses UPSYNC_TOKEN with UPSYNC_TOKEN_FILE, --token, and a bad token, never quoting it', () => {
    const { cwd } = workspace();
    writeFileSync(join(cwd, 't'), `${TOKEN} and spaces`);
    const both = { UPSYNC_TOKEN: TOKEN, UPSYNC_TOKEN_FILE: 't' };
    const messages = [
      errorOf(() => resolveIn(cwd, [], both)),
      errorOf(() => resolveIn(cwd, ['--token', TOKEN])),
      errorOf(() => resolveIn(cwd, ['--token-file', 't'])),
      errorOf(() => resolveIn(cwd, [], { UPSYNC_TOKEN: `${TOKEN}\u0007` })),
    ];
    expect(messages).toEqual([
      'UPSYNC_TOKEN and UPSYNC_TOKEN_FILE are both set; unset one of them',
      '--token is not accepted; set UPSYNC_TOKEN or use --token-file FILE',
      `the token in ${join(cwd, 't')} (from --token-file) is not allowed: visible ASCII characters without spaces`,
      'the token (from UPSYNC_TOKEN) is not allowed: visible ASCII characters without spaces',
    ]);
  });

  it('names an unreadable or empty token file and where its name came from', () => {
    const { cwd } = workspace({ tokenFile: 'missing' });
    writeFileSync(join(cwd, 'empty'), ' \n');
    expect(errorOf(() => resolveIn(cwd, []))).toBe(
      `token file ${join(cwd, 'data', 'missing')} (from data/upsync.config.json) cannot be read: no such file`,
    );
    expect(errorOf(() => resolveIn(cwd, [], { UPSYNC_TOKEN_FILE: 'empty' }))).toBe(
      `token file ${join(cwd, 'empty')} (from UPSYNC_TOKEN_FILE) is empty`,
    );
  });

  it('keeps the token out of text: a stringified or inspected result shows the mask', () => {
    const { cwd } = workspace();
    const resolved = resolveIn(cwd, [], { UPSYNC_TOKEN: TOKEN });
    expect(JSON.stringify(resolved)).not.toContain(TOKEN);
    expect(inspect(resolved, { depth: 10 })).not.toContain(TOKEN);
    expect(`${String(resolved.token?.secret)}`).toBe('********');
  });
});

describe('resolveSettings: one line for each wrong value, naming the setting, the value, the source and what is allowed', () => {
  const cases: [
    string,
    Record<string, unknown> | undefined,
    string[],
    NodeJS.ProcessEnv,
    string,
  ][] = [
    [
      'bad integer in the file',
      { concurrency: 'abc' },
      [],
      {},
      'concurrency = "abc" (from data/upsync.config.json) is not allowed: an integer from 1 to 1024',
    ],
    [
      'integer out of range from a flag',
      undefined,
      ['--attempts', '0'],
      {},
      'attempts = "0" (from --attempts) is not allowed: an integer from 1 to 1000',
    ],
    [
      'fraction where an integer goes',
      { burst: 1.5, rate: 2 },
      [],
      {},
      'burst = 1.5 (from data/upsync.config.json) is not allowed: an integer from 1 to 100000',
    ],
    [
      'bad duration from the environment',
      undefined,
      [],
      { UPSYNC_DEBOUNCE: '10' },
      'debounce = "10" (from UPSYNC_DEBOUNCE) is not allowed: a duration like 500ms, 10s, 2m or 1h30m',
    ],
    [
      'a number where a duration goes in the file',
      { retryTime: 30 },
      [],
      {},
      'retryTime = 30 (from data/upsync.config.json) is not allowed: a duration like 500ms, 10s, 2m or 1h30m',
    ],
    [
      'bad boolean from the environment',
      undefined,
      [],
      { UPSYNC_DELETE: 'maybe' },
      'delete = "maybe" (from UPSYNC_DELETE) is not allowed: true or false (also 1/0, yes/no)',
    ],
    [
      'bad boolean in the file',
      { json: 'on' },
      [],
      {},
      'json = "on" (from data/upsync.config.json) is not allowed: true or false (also 1/0, yes/no)',
    ],
    [
      'not a URL',
      undefined,
      ['--remote', 'sync.example.com'],
      {},
      'remote = "sync.example.com" (from --remote) is not allowed: an http or https URL like https://sync.example.com',
    ],
    [
      'not http',
      { remote: 'ftp://example.com' },
      [],
      {},
      'remote = "ftp://example.com" (from data/upsync.config.json) is not allowed: an http or https URL like https://sync.example.com (ftp: is not http or https)',
    ],
    [
      'a URL with credentials (not echoed)',
      undefined,
      [],
      { UPSYNC_REMOTE: 'https://me:hunter2@example.com' },
      'remote = "https://***@example.com" (from UPSYNC_REMOTE) is not allowed: a URL without credentials (the token goes in UPSYNC_TOKEN or a token file)',
    ],
    [
      'bad project name',
      { project: 'my project' },
      [],
      {},
      'project = "my project" (from data/upsync.config.json) is not allowed: 1 to 128 characters of A-Z a-z 0-9 . _ -',
    ],
    [
      'bad log level',
      undefined,
      ['--log-level', 'loud'],
      {},
      'logLevel = "loud" (from --log-level) is not allowed: one of trace, debug, info, warn, error, silent',
    ],
    [
      'rate of zero',
      undefined,
      [],
      { UPSYNC_RATE: '0' },
      'rate = "0" (from UPSYNC_RATE) is not allowed: a number above 0 (requests per second)',
    ],
    [
      'burst without rate',
      { burst: 4 },
      [],
      {},
      'burst = 4 (from data/upsync.config.json) needs a rate: set rate too (--rate, UPSYNC_RATE or "rate" in the config file)',
    ],
    [
      'a wrong value under a flag that overrides it',
      { concurrency: 0 },
      ['--concurrency', '8'],
      {},
      'concurrency = 0 (from data/upsync.config.json) is not allowed: an integer from 1 to 1024',
    ],
    [
      'unknown flag with a suggestion',
      undefined,
      ['--concurency', '8'],
      {},
      'unknown option --concurency; did you mean --concurrency? Run "upsync run --help".',
    ],
  ];
  for (const [what, file, args, env, message] of cases) {
    it(what, () => {
      const { cwd } = workspace(file);
      expect(errorOf(() => resolveIn(cwd, args, env))).toBe(message);
    });
  }

  it('a bad key for --only, and a flag of the other command', () => {
    const { cwd } = workspace();
    expect(errorOf(() => resolveIn(cwd, ['--only', 'a/../b'], {}, 'sync'))).toBe(
      'only = "a/../b" (from --only) is not allowed: a key the protocol takes (the key has a "." or ".." segment)',
    );
    expect(errorOf(() => resolveIn(cwd, ['--debounce', '2s'], {}, 'sync'))).toBe(
      '--debounce is an option of upsync run, not of upsync sync. Run "upsync sync --help".',
    );
  });
});

describe('parseSyncOptions', () => {
  it('builds the SyncOptions of run from all three layers', () => {
    const { cwd, dir } = workspace({
      remote: 'https://sync.example.com/',
      debounce: '2s',
      delete: true,
    });
    const options = parseSyncOptions('run', [join(cwd, 'data'), '--project', 'p1', '--rate', '5'], {
      UPSYNC_TOKEN: TOKEN,
      UPSYNC_SHUTDOWN_TIMEOUT: '1m',
    });
    expect(options).toEqual({
      command: 'run',
      dir,
      remote: 'https://sync.example.com',
      project: 'p1',
      token: TOKEN,
      stateDir: join(dir, '.upsync'),
      concurrency: 16,
      ratePerSec: 5,
      burst: undefined,
      attempts: 5,
      retryTimeMs: 120_000,
      json: false,
      delete: true,
      only: undefined,
      debounceMs: 2_000,
      shutdownTimeoutMs: 60_000,
      quiet: false,
      verbose: false,
      logLevel: 'info',
      ownFiles: [join(dir, 'upsync.config.json')],
    });
  });

  it('refuses a missing remote, project or token with one line naming every way to set it', () => {
    const { cwd } = workspace();
    const dir = join(cwd, 'data');
    expect(errorOf(() => parseSyncOptions('sync', [dir], {}))).toBe(
      'remote is not set: give --remote URL, UPSYNC_REMOTE or "remote" in the config file',
    );
    expect(errorOf(() => parseSyncOptions('sync', [dir, '--remote', 'http://a'], {}))).toBe(
      'project is not set: give --project ID, UPSYNC_PROJECT or "project" in the config file',
    );
    expect(
      errorOf(() =>
        parseSyncOptions('sync', [dir], { UPSYNC_REMOTE: 'http://a', UPSYNC_PROJECT: 'p' }),
      ),
    ).toMatch(/^no token: set UPSYNC_TOKEN, or name a file holding it with --token-file FILE/);
  });
});
