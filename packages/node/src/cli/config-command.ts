import { registerCommand, type CliIo } from './main.ts';
import { CONFIG_FILE_NAME } from './config/config-file.ts';
import {
  resolveSettings,
  type ResolvedSetting,
  type ResolvedSettings,
} from './config/resolve-settings.ts';
import { SECRET_MASK } from './config/secret.ts';
import { SETTING_NAMES, settingDef, type SettingName } from './config/settings.ts';
import { sourceLabel, sourceName } from './config/source.ts';

/** One row of the configuration: what `upsync config` prints, as a table or as JSON. */
export interface ConfigRow {
  readonly setting: string;
  /** null: not set. */
  readonly value: string | number | boolean | null;
  /** What the table shows in place of a null value. */
  readonly unsetText?: string;
  /** `flag --x`, `env UPSYNC_X`, `file <path>`, `default`, or for the token where it was read. */
  readonly source: string;
  /** Lower layers that also set it (and lost), and why a value differs from its source's. */
  readonly notes: readonly string[];
}

/** A default as help writes it: `2m`, not `"2m"`. */
const plain = (value: unknown): string =>
  typeof value === 'string' ? value : (JSON.stringify(value) ?? '');

const settingList = SETTING_NAMES.map((name) => {
  const def = settingDef(name);
  const flag = def.flag === undefined ? '' : `--${def.flag}`;
  const fallback =
    def.required === true
      ? '(required)'
      : (def.defaultText ?? (def.default === undefined ? '' : plain(def.default)));
  return {
    name,
    flag,
    env: def.env ?? '',
    where: def.inFile ? name : '(not in the file)',
    fallback,
  };
});

const column = (rows: readonly string[][]): string => {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows
    .map((row) => `  ${row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ')}`.trimEnd())
    .join('\n');
};

export const CONFIG_HELP = `Usage: upsync config [DIR] [options]

Prints the settings "upsync sync" and "upsync run" would use for DIR (default .):
each one's value and where it came from. Nothing is sent and no state is opened.
The token is never shown, only where it was found.

Each setting comes from the first layer that sets it:
  1. a flag                     --concurrency 8
  2. an environment variable    UPSYNC_CONCURRENCY=8
  3. the config file            "concurrency": 8 in DIR/${CONFIG_FILE_NAME}, or in the
                                file named by --config FILE or UPSYNC_CONFIG (which must exist)
  4. the default

The config file holds the flags' names in camelCase, with the same values:
durations like "10s" or "2m", numbers as 8 or "8", yes/no settings as true or
false (variables also take 1/0 and yes/no). Relative paths in it are read from
the file's folder. Every value is checked wherever it comes from, and an unknown
key is an error. The token is never a flag or a file setting: set UPSYNC_TOKEN,
or name a file holding it (--token-file, UPSYNC_TOKEN_FILE or "tokenFile").
A flag --no-NAME turns off a yes/no setting the environment or the file turned on.

Example ${CONFIG_FILE_NAME}:
  {
    "remote": "https://sync.example.com",
    "project": "team-logs",
    "tokenFile": "../secrets/upsync-token",
    "concurrency": 8,
    "retryTime": "2m",
    "debounce": "10s",
    "delete": true,
    "logLevel": "debug"
  }

Settings:
${column([['file key', 'flag', 'variable', 'default'], ...settingList.map((s) => [s.where, s.flag, s.env, s.fallback])])}

Options: every option of "upsync sync" and "upsync run", to see its effect, and
  --json      print the configuration as one JSON object
  --help      show this help

Examples:
  upsync config ./logs
  UPSYNC_CONCURRENCY=4 upsync config ./logs --rate 5
  upsync config --config ~/upsync/work.json --json
`;

/** How to set `name`, for a required one nothing set. */
function layersOf(name: SettingName): string {
  const def = settingDef(name);
  return `--${def.flag ?? name}, ${def.env ?? ''} or "${name}" in the config file`;
}

function rowOf(name: SettingName, setting: ResolvedSetting<unknown>): ConfigRow {
  const def = settingDef(name);
  const notes = [];
  if (setting.overridden.length > 0) {
    notes.push(`beats ${setting.overridden.map(sourceLabel).join(', ')}`);
  }
  if (setting.note !== undefined) notes.push(setting.note);
  let value: ConfigRow['value'] = null;
  if (setting.value !== undefined) {
    value = def.show
      ? def.show(setting.value)
      : (setting.value as Exclude<ConfigRow['value'], null>);
  }
  const unsetText =
    def.required === true
      ? '(not set)'
      : def.defaultText === undefined
        ? '(not set)'
        : `(${def.defaultText})`;
  const required = value === null && def.required === true;
  return {
    setting: name,
    value,
    ...(value === null ? { unsetText } : {}),
    source: required ? `required: ${layersOf(name)}` : sourceLabel(setting.source),
    notes,
  };
}

/** The rows in help order, the token after the project. No row holds the token. */
export function configRows(resolved: ResolvedSettings): ConfigRow[] {
  const rows: ConfigRow[] = [];
  const { token, settings } = resolved;
  for (const name of SETTING_NAMES) {
    const row = rowOf(name, settings[name]);
    if (
      name === 'tokenFile' &&
      settings.tokenFile.value !== undefined &&
      token?.file === undefined
    ) {
      rows.push({ ...row, notes: [...row.notes, 'not used: UPSYNC_TOKEN beats it'] });
    } else {
      rows.push(row);
    }
    if (name !== 'project') continue;
    rows.push({
      setting: 'token',
      value: token === undefined ? null : SECRET_MASK,
      ...(token === undefined ? { unsetText: '(not set)' } : {}),
      source:
        token === undefined
          ? `required: UPSYNC_TOKEN, or a file holding it: ${layersOf('tokenFile')}`
          : token.file === undefined
            ? sourceLabel(token.source)
            : `token file ${token.file} (${sourceLabel(token.source)})`,
      notes: [],
    });
  }
  return rows;
}

function table(resolved: ResolvedSettings): string {
  const rows = configRows(resolved);
  const cells = rows.map((row) => [
    row.setting,
    row.value === null ? (row.unsetText ?? '(not set)') : String(row.value),
    row.notes.length === 0 ? row.source : `${row.source} (${row.notes.join('; ')})`,
  ]);
  const file = resolved.configFile;
  const lines = [
    `upsync configuration for ${resolved.dir}`,
    `config file: ${file.shown}${file.found ? '' : ' (none there)'}${
      resolved.settings.config.source.kind === 'default'
        ? ''
        : ` (from ${sourceName(resolved.settings.config.source)})`
    }`,
    '',
    column([['setting', 'value', 'from'], ...cells]),
  ];
  if (resolved.missing.length > 0) {
    lines.push(
      '',
      `Not set: ${resolved.missing.join(', ')}. "upsync sync" and "upsync run" need them; see "upsync config --help".`,
    );
  }
  return `${lines.join('\n')}\n`;
}

function json(resolved: ResolvedSettings): string {
  const settings: Record<string, unknown> = {};
  for (const row of configRows(resolved)) {
    settings[row.setting] = {
      value: row.value,
      source: row.source,
      ...(row.notes.length === 0 ? {} : { notes: row.notes }),
    };
  }
  const output = {
    dir: resolved.dir,
    configFile: { path: resolved.configFile.path, found: resolved.configFile.found },
    settings,
    missing: resolved.missing,
  };
  return `${JSON.stringify(output, null, 2)}\n`;
}

/**
 * `upsync config [DIR]`: the effective configuration and where each value
 * came from. A wrong value is the ConfigError `sync` would give (exit 2);
 * unset required settings are shown, not refused (exit 0).
 */
export function configCommand(
  args: string[],
  io: CliIo,
  env: NodeJS.ProcessEnv = process.env,
  cwd: string = process.cwd(),
): Promise<number> {
  const resolved = resolveSettings('config', args, env, { cwd });
  if (resolved === null) {
    io.stdout(CONFIG_HELP);
    return Promise.resolve(0);
  }
  // --json on this command line picks the output; from the environment or the
  // file it is a setting of sync and run, shown like any other.
  const asJson = resolved.settings.json.source.kind === 'flag' && resolved.settings.json.value;
  io.stdout(asJson === true ? json(resolved) : table(resolved));
  return Promise.resolve(0);
}

registerCommand(
  'config',
  'show the effective configuration and where each value came from',
  (args, io) => configCommand(args, io),
);
