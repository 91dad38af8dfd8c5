import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LOG_FILE, openStateLogger, REDACTED, secretScrubber } from './logger.ts';

const root = mkdtempSync(join(tmpdir(), 'upsync-logger-'));
let folders = 0;
afterAll(() => rmSync(root, { recursive: true, force: true }));
const folder = (): string => join(root, `s${++folders}`);

// Holds characters JSON escapes, so the escaped form must be caught too.
const TOKEN = 'tok-"quoted"\\slash-9f8e7d';

function lines(path: string): Array<Record<string, unknown>> {
  return readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('secretScrubber', () => {
  it('replaces the secret as it is and as JSON escapes it', () => {
    const scrub = secretScrubber([TOKEN, '']);
    expect(scrub(`a ${TOKEN} b ${TOKEN}`)).toBe(`a ${REDACTED} b ${REDACTED}`);
    expect(scrub(JSON.stringify({ t: TOKEN }))).toBe(`{"t":"${REDACTED}"}`);
    expect(scrub('nothing secret')).toBe('nothing secret');
  });
});

describe('openStateLogger', () => {
  it('keeps the token out of every field, message, error and interpolation', async () => {
    const stateDir = folder();
    const { logger, path, close } = openStateLogger({
      stateDir,
      level: 'trace',
      secrets: [TOKEN],
    });
    expect(path).toBe(join(stateDir, LOG_FILE));
    const error = Object.assign(new Error(`refused ${TOKEN}`), { code: 'E_X', status: 401 });
    logger.info({ token: 'named-field-value', nested: { authorization: 'Bearer abc' } }, 'fields');
    logger.warn(`message with ${TOKEN} inside`);
    logger.warn({ err: error }, 'an error');
    logger.error({ deep: { list: [{ text: `x${TOKEN}y` }] } }, 'deep');
    logger.info('interpolated %s and %j', TOKEN, { t: TOKEN });
    logger.debug({ headers: { authorization: `Bearer ${TOKEN}` } }, 'headers');
    await close();
    const text = readFileSync(path, 'utf8');
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain(JSON.stringify(TOKEN).slice(1, -1));
    expect(text).not.toContain('named-field-value');
    expect(text).not.toContain('Bearer abc');
    const logged = lines(path);
    expect(logged.map((line) => line.msg)).toEqual([
      'fields',
      `message with ${REDACTED} inside`,
      'an error',
      'deep',
      `interpolated ${REDACTED} and {"t":"${REDACTED}"}`,
      'headers',
    ]);
    expect(logged[0]).toMatchObject({
      level: 'info',
      token: REDACTED,
      nested: { authorization: REDACTED },
    });
    expect(logged[2]).toMatchObject({
      level: 'warn',
      err: { type: 'Error', message: `refused ${REDACTED}`, code: 'E_X', status: 401 },
    });
    expect(logged[3]).toMatchObject({ deep: { list: [{ text: `x${REDACTED}y` }] } });
    expect(logged[5]).toMatchObject({ level: 'debug', headers: { authorization: REDACTED } });
  });

  it('writes at the level asked and above only', async () => {
    const stateDir = folder();
    const { logger, path, close } = openStateLogger({ stateDir, level: 'warn', secrets: [] });
    logger.info('not this');
    logger.warn('this');
    await close();
    expect(lines(path).map((line) => line.msg)).toEqual(['this']);
  });

  it('moves a log over the size limit to upsync.log.1 when it opens', async () => {
    const stateDir = folder();
    const first = openStateLogger({ stateDir, level: 'info', secrets: [] });
    first.logger.info('old line');
    await first.close();
    // Under the limit: appended to.
    const second = openStateLogger({ stateDir, level: 'info', secrets: [], maxBytes: 10_000 });
    second.logger.info('second line');
    await second.close();
    expect(lines(join(stateDir, LOG_FILE)).map((l) => l.msg)).toEqual(['old line', 'second line']);
    // Over the limit: rotated, and the new file starts empty.
    const third = openStateLogger({ stateDir, level: 'info', secrets: [], maxBytes: 10 });
    third.logger.info('new line');
    await third.close();
    expect(lines(join(stateDir, `${LOG_FILE}.1`)).map((l) => l.msg)).toEqual([
      'old line',
      'second line',
    ]);
    expect(lines(join(stateDir, LOG_FILE)).map((l) => l.msg)).toEqual(['new line']);
  });

  it('opens no file when silent, and drops lines logged after close', async () => {
    const silentDir = folder();
    const silent = openStateLogger({ stateDir: silentDir, level: 'silent', secrets: [] });
    silent.logger.error('nothing');
    await silent.close();
    expect(existsSync(join(silentDir, LOG_FILE))).toBe(false);

    const stateDir = folder();
    const { logger, path, close } = openStateLogger({ stateDir, level: 'info', secrets: [] });
    logger.info('before');
    await close();
    logger.error('after');
    await close();
    expect(lines(path).map((line) => line.msg)).toEqual(['before']);
  });

  it('does not throw when the log cannot be written', async () => {
    const blocker = join(folder(), 'a-file');
    mkdirSync(dirname(blocker), { recursive: true });
    writeFileSync(blocker, '');
    // The state folder's parent is a file: no log can be opened there.
    const { logger, close } = openStateLogger({
      stateDir: join(blocker, 'state'),
      level: 'info',
      secrets: [],
    });
    logger.info('lost');
    await close();
    expect(existsSync(join(blocker, 'state'))).toBe(false);
  });
});
