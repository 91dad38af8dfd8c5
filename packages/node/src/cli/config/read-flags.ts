import { parseArgs } from 'node:util';
import { ConfigError } from '@upsync/core';
import { closestName } from './closest-name.ts';
import { SETTING_NAMES, settingDef, type CliCommand, type SettingName } from './settings.ts';

export interface Flags {
  readonly help: boolean;
  readonly positionals: readonly string[];
  /** Each setting given on the command line: its raw value and the flag as the user wrote it. */
  readonly given: ReadonlyMap<SettingName, { raw: string | boolean; flag: string }>;
  /** `--token` was given: refused by the caller, its value never kept. */
  readonly tokenFlag: boolean;
}

type OptionSpec = { type: 'string' | 'boolean'; short?: string };

/** The settings whose flag `command` takes (`config` takes them all, to show their effect). */
export function flagSettings(command: CliCommand): SettingName[] {
  return SETTING_NAMES.filter((name) => {
    const def = settingDef(name);
    return def.flag !== undefined && (command === 'config' || def.flagFor.includes(command));
  });
}

/** Reads the command line of `sync`, `run` or `config`. Unknown options get a suggestion. */
export function readFlags(command: CliCommand, args: readonly string[]): Flags {
  const names = flagSettings(command);
  const options: Record<string, OptionSpec> = {
    help: { type: 'boolean', short: 'h' },
    // Declared only to be refused with a clear message (and never echoed).
    token: { type: 'string' },
  };
  for (const name of names) {
    const def = settingDef(name);
    options[def.flag!] =
      def.short === undefined ? { type: def.type } : { type: def.type, short: def.short };
  }
  let result: { values: Record<string, string | boolean | undefined>; positionals: string[] };
  try {
    const parsed = parseArgs({
      args: [...args],
      options,
      strict: true,
      allowPositionals: true,
      // `--no-delete` turns off a boolean the environment or the file turned on.
      allowNegative: true,
    });
    result = {
      values: parsed.values,
      positionals: parsed.positionals,
    };
  } catch (error) {
    throw new ConfigError(argsProblem(command, error as NodeJS.ErrnoException));
  }
  const given = new Map<SettingName, { raw: string | boolean; flag: string }>();
  for (const name of names) {
    const flag = settingDef(name).flag!;
    const raw = result.values[flag];
    if (raw === undefined) continue;
    given.set(name, { raw, flag: raw === false ? `--no-${flag}` : `--${flag}` });
  }
  return {
    help: result.values.help === true,
    positionals: result.positionals,
    given,
    tokenFlag: result.values.token !== undefined,
  };
}

function argsProblem(command: CliCommand, error: NodeJS.ErrnoException): string {
  const helpHint = `Run "upsync ${command} --help".`;
  const option = /'(-[^' ]+)/.exec(error.message)?.[1];
  if (error.code !== 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || option === undefined) {
    return `${error.message.replace(/\.$/, '')}. ${helpHint}`;
  }
  const bare = option.replace(/^-+/, '');
  const elsewhere = SETTING_NAMES.find((name) => settingDef(name).flag === bare);
  if (elsewhere !== undefined && command !== 'config') {
    const owners = settingDef(elsewhere).flagFor.map((owner) => `upsync ${owner}`);
    return `${option} is an option of ${owners.join(' and ')}, not of upsync ${command}. ${helpHint}`;
  }
  const flags = flagSettings(command).map((name) => settingDef(name).flag!);
  const guess = option.startsWith('--') ? closestName(bare, flags) : undefined;
  return guess === undefined
    ? `unknown option ${option}. ${helpHint}`
    : `unknown option ${option}; did you mean --${guess}? ${helpHint}`;
}
