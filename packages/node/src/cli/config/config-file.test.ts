import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isUpsyncError } from '@upsync/core';
import { resolveSettings } from './resolve-settings.ts';

const made: string[] = [];
afterEach(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Resolves `config` in a fresh folder whose upsync.config.json holds `text` (none when undefined). */
function resolveWith(text: string | undefined, args: string[] = []): unknown {
  const cwd = mkdtempSync(join(tmpdir(), 'upsync-config-file-'));
  made.push(cwd);
  if (text !== undefined) writeFileSync(join(cwd, 'upsync.config.json'), text);
  return resolveSettings('config', args, {}, { cwd });
}

function errorOf(text: string | undefined, args: string[] = []): string {
  try {
    resolveWith(text, args);
  } catch (error) {
    expect(isUpsyncError(error) && error.code === 'ERR_CONFIG').toBe(true);
    const message = (error as Error).message;
    expect(message.split('\n')).toHaveLength(1);
    return message;
  }
  throw new Error('expected a ConfigError');
}

describe('the config file', () => {
  it('is optional in DIR, but a file named by --config must exist', () => {
    expect(resolveWith(undefined)).toMatchObject({ configFile: { found: false } });
    expect(errorOf(undefined, ['--config', 'nope.json'])).toBe(
      'config file nope.json (from --config) cannot be read: no such file',
    );
  });

  it('names an unknown key and suggests the closest known one', () => {
    expect(errorOf('{"concurency": 8}')).toBe(
      'upsync.config.json: unknown setting "concurency"; did you mean "concurrency"?',
    );
    expect(errorOf('{"retry-time": "2m"}')).toBe(
      'upsync.config.json: unknown setting "retry-time"; did you mean "retryTime"?',
    );
    expect(errorOf('{"colour": "red"}')).toMatch(
      /^upsync\.config\.json: unknown setting "colour"; the settings are remote, project, tokenFile, state, /,
    );
  });

  it('refuses a token without quoting it, and settings that are flags only', () => {
    const message = errorOf('{"token": "s3cr3t-value"}');
    expect(message).toBe(
      'upsync.config.json: "token" is not allowed in a config file (it would sit in plain text beside your files); ' +
        'name a file holding it with "tokenFile", or set the UPSYNC_TOKEN environment variable',
    );
    expect(message).not.toContain('s3cr3t');
    expect(errorOf('{"only": "a.txt"}')).toBe(
      'upsync.config.json: "only" cannot be set in a config file; give --only',
    );
    expect(errorOf('{"config": "x.json"}')).toBe(
      'upsync.config.json: "config" cannot be set in a config file; give --config or UPSYNC_CONFIG',
    );
  });

  it('reports invalid JSON in one line with the file and the position, never its text', () => {
    const message = errorOf('{\n  "remote": "http://a",\n  "tokenFile": "t" "project": "x"\n}');
    expect(message).toBe(
      "upsync.config.json is not valid JSON: expected ',' or '}' after a value at line 3 column 20",
    );
    expect(errorOf('{"a": }')).toBe(
      'upsync.config.json is not valid JSON: expected a value (a string in double quotes, a number, true, false, null, { or [) at line 1 column 7',
    );
    const leaky = errorOf('{"project": "p1", "x": "hunter2 }');
    expect(leaky).toBe(
      'upsync.config.json is not valid JSON: a string is not closed at line 1 column 24',
    );
  });

  it('must hold an object; a byte order mark and "$schema" are fine', () => {
    expect(errorOf('[1, 2]')).toBe(
      'upsync.config.json must hold one JSON object like {"remote": "https://sync.example.com"}, not an array',
    );
    expect(resolveWith('\ufeff{"$schema": "x", "attempts": "3"}')).toMatchObject({
      settings: { attempts: { value: 3 } },
    });
  });
});
