import { readFileSync } from 'node:fs';
import { ConfigError } from '@upsync/core';
import { closestName } from './closest-name.ts';
import { jsonProblem } from './json-problem.ts';
import { SETTING_NAMES, SETTINGS } from './settings.ts';
// One name for both sides: the folder source never syncs this file.
import { CONFIG_FILE_NAME } from '../../source/path-filter.ts';

export { CONFIG_FILE_NAME };

/** The keys a config file may hold. */
export const FILE_KEYS: readonly string[] = SETTING_NAMES.filter((name) => SETTINGS[name].inFile);

/** Read and checked for shape (an object of known keys); the values are checked later. */
export interface ConfigFile {
  readonly path: string;
  /** The path as messages show it. */
  readonly shown: string;
  readonly found: boolean;
  readonly values: Readonly<Record<string, unknown>>;
}

/**
 * Reads a config file. A missing file is an empty one unless `required` (it
 * was named by --config or UPSYNC_CONFIG). No message quotes the file's
 * text: a token may have been pasted into it.
 */
export function readConfigFile(
  path: string,
  options: { shown: string; required: boolean; namedBy?: string },
): ConfigFile {
  const { shown } = options;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !options.required) return { path, shown, found: false, values: {} };
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'a folder' : code;
    const by = options.namedBy === undefined ? '' : ` (from ${options.namedBy})`;
    throw new ConfigError(`config file ${shown}${by} cannot be read: ${why ?? 'error'}`);
  }
  // Editors on Windows may save a byte order mark, which JSON.parse refuses.
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    const { line, column, problem } = jsonProblem(text);
    throw new ConfigError(
      `${shown} is not valid JSON: ${problem} at line ${line} column ${column}`,
    );
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    const got = parsed === null ? 'null' : Array.isArray(parsed) ? 'an array' : typeof parsed;
    throw new ConfigError(
      `${shown} must hold one JSON object like {"remote": "https://sync.example.com"}, not ${got}`,
    );
  }
  const values = parsed as Record<string, unknown>;
  for (const key of Object.keys(values)) checkKey(key, shown);
  return { path, shown, found: true, values };
}

function checkKey(key: string, shown: string): void {
  // Editors' JSON schema hint; harmless.
  if (key === '$schema' || FILE_KEYS.includes(key)) return;
  if (key.toLowerCase() === 'token') {
    throw new ConfigError(
      `${shown}: ${JSON.stringify(key)} is not allowed in a config file (it would sit in plain text beside your files); ` +
        'name a file holding it with "tokenFile", or set the UPSYNC_TOKEN environment variable',
    );
  }
  const flagOnly = SETTING_NAMES.find((name) => name === key && !SETTINGS[name].inFile);
  if (flagOnly !== undefined) {
    const where = SETTINGS[flagOnly].env === undefined ? '' : ` or ${SETTINGS[flagOnly].env}`;
    throw new ConfigError(
      `${shown}: ${JSON.stringify(key)} cannot be set in a config file; give --${SETTINGS[flagOnly].flag}${where}`,
    );
  }
  const guess = closestName(key, FILE_KEYS);
  throw new ConfigError(
    guess === undefined
      ? `${shown}: unknown setting ${JSON.stringify(key)}; the settings are ${FILE_KEYS.join(', ')}`
      : `${shown}: unknown setting ${JSON.stringify(key)}; did you mean "${guess}"?`,
  );
}
