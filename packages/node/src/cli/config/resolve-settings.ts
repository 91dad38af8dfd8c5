import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ConfigError } from '@upsync/core';
import { CONFIG_FILE_NAME, readConfigFile, type ConfigFile } from './config-file.ts';
import { readFlags } from './read-flags.ts';
import { Secret } from './secret.ts';
import {
  SETTING_NAMES,
  settingDef,
  TOKEN_ALLOWED,
  TOKEN_SCHEMA,
  type CliCommand,
  type SettingDef,
  type SettingName,
  type SettingValues,
} from './settings.ts';
import { rankOf, showPath, sourceName, type Source } from './source.ts';

export interface ResolvedSetting<T> {
  /** The checked value; undefined when nothing set it and it has no default. */
  readonly value: T | undefined;
  /** Where the value came from: `default` when no layer set it. */
  readonly source: Source;
  /** Lower layers that set it too, and lost. */
  readonly overridden: readonly Source[];
  /** Why the value is not the one its source gave (quiet and verbose settle who wins). */
  readonly note?: string;
}

export type ResolvedValues = {
  readonly [K in SettingName]: ResolvedSetting<SettingValues[K]>;
};

export interface ResolvedToken {
  readonly secret: Secret;
  /** UPSYNC_TOKEN, or where the token file's name came from. */
  readonly source: Source;
  /** The token file read, absolute; undefined for UPSYNC_TOKEN. */
  readonly file: string | undefined;
}

export interface ResolvedSettings {
  readonly command: CliCommand;
  /** The folder to mirror, absolute. */
  readonly dir: string;
  readonly cwd: string;
  readonly configFile: ConfigFile;
  readonly settings: ResolvedValues;
  readonly token: ResolvedToken | undefined;
  /** Required settings nothing set: `upsync sync` and `run` refuse to start without them. */
  readonly missing: readonly ('remote' | 'project' | 'token')[];
}

interface Candidate {
  readonly raw: unknown;
  readonly source: Source;
}

/** One line for a value a layer gave that its setting does not allow. */
function notAllowed(name: string, def: SettingDef, candidate: Candidate, allowed: string): string {
  let quoted = (def.quote ?? ((raw: unknown) => JSON.stringify(raw)))(candidate.raw);
  if (quoted.length > 80) quoted = `${quoted.slice(0, 77)}...`;
  return `${name} = ${quoted} (from ${sourceName(candidate.source)}) is not allowed: ${allowed}`;
}

function check(name: SettingName, candidate: Candidate, cwd: string): unknown {
  const def = settingDef(name);
  // The per-call error map words every issue the schema does not word itself.
  const result = def.schema.safeParse(candidate.raw, { error: () => def.allowed });
  if (!result.success) {
    const allowed = result.error.issues[0]?.message ?? def.allowed;
    throw new ConfigError(notAllowed(name, def, candidate, allowed));
  }
  if (def.path !== true) return result.data;
  // A path in the file is read from the file's folder, so the file can move with its folder.
  const base = candidate.source.kind === 'file' ? dirname(candidate.source.path) : cwd;
  return resolve(base, result.data as string);
}

/** Every layer that sets `name`, highest first. Empty variables count as unset. */
function candidates(
  name: SettingName,
  flags: ReturnType<typeof readFlags>,
  env: NodeJS.ProcessEnv,
  file: ConfigFile | undefined,
): Candidate[] {
  const def = settingDef(name);
  const found: Candidate[] = [];
  const flag = flags.given.get(name);
  if (flag !== undefined) found.push({ raw: flag.raw, source: { kind: 'flag', flag: flag.flag } });
  const fromEnv = def.env === undefined ? undefined : env[def.env]?.trim();
  if (def.env !== undefined && fromEnv) {
    found.push({ raw: fromEnv, source: { kind: 'env', variable: def.env } });
  }
  if (file !== undefined && def.inFile && Object.hasOwn(file.values, name)) {
    found.push({
      raw: file.values[name],
      source: { kind: 'file', path: file.path, shown: file.shown },
    });
  }
  return found;
}

/**
 * Settles one setting: the highest layer's value wins. Every layer's value is
 * checked, not only the winner's: a wrong value in the file is a mistake to
 * fix even on a day a flag hides it.
 */
function settle(
  name: SettingName,
  found: readonly Candidate[],
  cwd: string,
  defaultValue: () => unknown,
): ResolvedSetting<unknown> {
  const values = found.map((candidate) => check(name, candidate, cwd));
  const [winner, ...rest] = found;
  if (winner === undefined)
    return { value: defaultValue(), source: { kind: 'default' }, overridden: [] };
  return { value: values[0], source: winner.source, overridden: rest.map((c) => c.source) };
}

/**
 * Every effective setting of `upsync sync`, `run` or `config` and where it
 * came from: a flag beats an UPSYNC_* variable, which beats the config file
 * (DIR/upsync.config.json, or --config / UPSYNC_CONFIG), which beats the
 * default. A wrong value anywhere is a ConfigError of one line. Returns null
 * for --help. Missing required settings are listed, not thrown: `upsync
 * config` shows them as not set.
 */
export function resolveSettings(
  command: CliCommand,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  options: { cwd?: string } = {},
): ResolvedSettings | null {
  const cwd = resolve(options.cwd ?? process.cwd());
  const flags = readFlags(command, args);
  if (flags.help) return null;
  if (flags.tokenFlag) {
    // Refused without echoing it: a flag value lands in shell history and `ps`.
    throw new ConfigError('--token is not accepted; set UPSYNC_TOKEN or use --token-file FILE');
  }
  if (flags.positionals.length > 1) {
    throw new ConfigError(
      `one folder at most, got ${flags.positionals.length}. Run "upsync ${command} --help".`,
    );
  }
  const dir = resolve(cwd, flags.positionals[0] ?? '.');
  const defaultConfig = join(dir, CONFIG_FILE_NAME);

  // The file's own name comes from the layers above it only.
  const config = settle(
    'config',
    candidates('config', flags, env, undefined),
    cwd,
    () => defaultConfig,
  );
  const configFile = readConfigFile(config.value as string, {
    shown: showPath(config.value as string, cwd),
    required: config.source.kind !== 'default',
    ...(config.source.kind === 'default' ? {} : { namedBy: sourceName(config.source) }),
  });

  const resolved: Partial<Record<SettingName, ResolvedSetting<unknown>>> = { config };
  for (const name of SETTING_NAMES) {
    if (name === 'config') continue;
    const def = settingDef(name);
    const found = candidates(name, flags, env, configFile);
    resolved[name] = settle(name, found, cwd, () =>
      name === 'state'
        ? join(dir, '.upsync')
        : def.default === undefined
          ? undefined
          : check(name, { raw: def.default, source: { kind: 'default' } }, cwd),
    );
  }
  const settings = resolved as ResolvedValues;
  const adjusted = { ...settings, ...quietOrVerbose(settings) };
  checkBurst(adjusted);
  const token = resolveToken(adjusted, env);
  const missing: ('remote' | 'project' | 'token')[] = [];
  if (adjusted.remote.value === undefined) missing.push('remote');
  if (adjusted.project.value === undefined) missing.push('project');
  if (token === undefined) missing.push('token');
  return { command, dir, cwd, configFile, settings: adjusted, token, missing };
}

/**
 * Quiet and verbose both on: the higher layer wins (a `--verbose` flag for
 * one run beats `"quiet": true` in the file); on the same layer it is a
 * mistake.
 */
function quietOrVerbose(settings: ResolvedValues): Partial<ResolvedValues> {
  const { quiet, verbose } = settings;
  if (quiet.value !== true || verbose.value !== true) return {};
  const q = rankOf(quiet.source);
  const v = rankOf(verbose.source);
  if (q === v) {
    throw new ConfigError(
      `quiet (from ${sourceName(quiet.source)}) and verbose (from ${sourceName(verbose.source)}) cannot both be on`,
    );
  }
  return q > v
    ? {
        verbose: {
          ...verbose,
          value: false,
          note: `off: quiet from ${sourceName(quiet.source)} wins`,
        },
      }
    : {
        quiet: {
          ...quiet,
          value: false,
          note: `off: verbose from ${sourceName(verbose.source)} wins`,
        },
      };
}

function checkBurst(settings: ResolvedValues): void {
  const { burst, rate } = settings;
  if (burst.value !== undefined && rate.value === undefined) {
    throw new ConfigError(
      `burst = ${burst.value} (from ${sourceName(burst.source)}) needs a rate: set rate too (--rate, UPSYNC_RATE or "rate" in the config file)`,
    );
  }
}

/**
 * The token comes from UPSYNC_TOKEN or a token file, whichever layer is
 * higher: a --token-file flag beats UPSYNC_TOKEN, which beats a "tokenFile"
 * in the config file. Both in the environment is ambiguous, so refused.
 */
function resolveToken(settings: ResolvedValues, env: NodeJS.ProcessEnv): ResolvedToken | undefined {
  const tokenFile = settings.tokenFile;
  const fromEnv = env['UPSYNC_TOKEN']?.trim();
  const envSource: Source = { kind: 'env', variable: 'UPSYNC_TOKEN' };
  if (tokenFile.value !== undefined && tokenFile.source.kind === 'env' && fromEnv) {
    throw new ConfigError('UPSYNC_TOKEN and UPSYNC_TOKEN_FILE are both set; unset one of them');
  }
  if (tokenFile.value !== undefined && (rankOf(tokenFile.source) > rankOf(envSource) || !fromEnv)) {
    return readTokenFile(tokenFile.value, tokenFile.source);
  }
  if (!fromEnv) return undefined;
  return {
    secret: checkToken(fromEnv, 'the token (from UPSYNC_TOKEN)'),
    source: envSource,
    file: undefined,
  };
}

function readTokenFile(path: string, source: Source): ResolvedToken {
  const from = `(from ${sourceName(source)})`;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'a folder' : code;
    throw new ConfigError(`token file ${path} ${from} cannot be read: ${why ?? 'error'}`);
  }
  if (text.trim() === '') throw new ConfigError(`token file ${path} ${from} is empty`);
  return { secret: checkToken(text, `the token in ${path} ${from}`), source, file: path };
}

/** Never quotes the token: the message would print it. */
function checkToken(text: string, what: string): Secret {
  const result = TOKEN_SCHEMA.safeParse(text);
  if (!result.success) throw new ConfigError(`${what} is not allowed: ${TOKEN_ALLOWED}`);
  return new Secret(result.data);
}
