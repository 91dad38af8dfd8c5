import { ConfigError, isUpsyncError } from '@upsync/core';

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const defaultIo: CliIo = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
};

type Command = (args: string[], io: CliIo) => Promise<number>;

const commands = new Map<string, { summary: string; run: Command }>();

/** Registers a subcommand; each command module calls this once. */
export function registerCommand(name: string, summary: string, run: Command): void {
  commands.set(name, { summary, run });
}

export const VERSION = '0.1.0';

function help(): string {
  const lines = [...commands].map(([name, { summary }]) => `  ${name.padEnd(10)} ${summary}`);
  return [
    'upsync: push local changes to a cloud API reliably and cheaply.',
    '',
    'Usage: upsync <command> [options]',
    '',
    'Commands:',
    ...lines,
    '',
    'Options:',
    '  --help       show help (also after a command: upsync sync --help)',
    '  --version    print the version',
    '',
    'Examples:',
    '  upsync demo                                   a tour against a local server with injected faults',
    '  upsync serve --data ./server-data             run the reference server on 127.0.0.1:8787',
    '  UPSYNC_TOKEN=... upsync sync ./logs --remote http://127.0.0.1:8787 --project p1',
    '  UPSYNC_TOKEN=... upsync run ./logs --remote http://127.0.0.1:8787 --project p1 --debounce 2s',
    '  upsync status ./logs                          what is pending, without a network call',
    '  upsync dlq retry ./logs                       send the dead letters again',
    '',
    'Settings come from flags, UPSYNC_* environment variables and upsync.config.json in the',
    'folder, in that order of precedence; "upsync config" shows the result.',
    '',
    'Exit codes: 0 everything arrived, 1 something did not arrive, 2 a usage,',
    'configuration or local state error.',
    '',
  ].join('\n');
}

/**
 * Runs the CLI and returns the exit code: 0 success, 1 something did not
 * arrive, 2 a usage, configuration or local state error the user must fix.
 */
export async function main(argv: string[], io: CliIo = defaultIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout(help());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-v') {
    io.stdout(`${VERSION}\n`);
    return 0;
  }
  const command = commands.get(name);
  if (!command) {
    io.stderr(`upsync: unknown command "${name}". Run "upsync --help" for the list.\n`);
    return 2;
  }
  try {
    return await command.run(rest, io);
  } catch (error) {
    // A user's mistake gets one clear line, never a stack trace.
    if (error instanceof ConfigError || (isUpsyncError(error) && error.code === 'ERR_STATE')) {
      io.stderr(`upsync ${name}: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
}
