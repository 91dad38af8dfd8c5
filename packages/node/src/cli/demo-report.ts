// The demo's closing words: the numbers of each step and what each one means.
import type picocolors from 'picocolors';
import { countStatus, type StepTally } from './demo-server.ts';
import type { CliReport } from './print-report.ts';

/** The numbers of a command's final report (from its `onReport`) that the demo explains. */
export type ReportNumbers = Pick<
  CliReport,
  'created' | 'updated' | 'skipped' | 'coalesced' | 'retries' | 'errored' | 'timedOut'
>;

const plural = (count: number, one: string, many = `${one}s`): string =>
  `${count} ${count === 1 ? one : many}`;

/** What the server answered in a step: `the server answered 327 requests: 21 × 429, 5 × 503`. */
export function serverLine(tally: StepTally): string {
  const refused = [429, 503, 500]
    .filter((status) => countStatus(tally, status) > 0)
    .map((status) => `${countStatus(tally, status)} × ${status}`);
  return `the server answered ${plural(tally.requests, 'request')}${refused.length > 0 ? `: ${refused.join(', ')}` : ', none refused'}`;
}

/**
 * The client's side of a step, from its report (undefined when the command
 * handed none back). Timeouts and errors are named only when there were some.
 */
export function clientLine(numbers: ReportNumbers | undefined): string | undefined {
  if (numbers === undefined) return undefined;
  const parts = [
    `${numbers.created} created`,
    `${numbers.updated} updated`,
    `${numbers.skipped} skipped`,
    `${numbers.coalesced} coalesced`,
    `${numbers.retries} retries`,
  ];
  if (numbers.timedOut > 0) parts.push(`${numbers.timedOut} timed out`);
  if (numbers.errored > 0) parts.push(`${numbers.errored} errored`);
  return parts.join(', ');
}

/** One line per number of the report, in the order the summary prints them. */
export const GLOSSARY: readonly (readonly [string, string])[] = [
  ['created', 'the server did not have the file: one PUT stored it (answered 201)'],
  ['updated', 'the server had older content: one PUT replaced it (answered 200)'],
  [
    'skipped',
    'already there: the listing showed the server has these exact bytes, so nothing was sent',
  ],
  [
    'coalesced',
    'a change replaced by a newer change of the same file before it was sent: it cost no request',
  ],
  [
    'retries',
    'requests sent again after a 429, 503, timeout or dropped connection, with the same Idempotency-Key, so nothing applies twice (requests held while a 503 paused the server are not counted: they were never sent)',
  ],
  [
    '429s',
    '"too many requests": over the rate limit; that request waits for the Retry-After and the client lowers its pace',
  ],
  [
    '503s',
    '"unavailable for a moment": the client holds every request to that server for the Retry-After',
  ],
  [
    'backoff',
    'time spent waiting before retries (the Retry-After, else exponential backoff with jitter); backoffMs in --json',
  ],
  [
    'timed out',
    'still pending when its retry budget ran out: kept in the outbox for the next run (exit code 1)',
  ],
];

type Colors = ReturnType<typeof picocolors.createColors>;

export function glossaryText(colors: Colors): string {
  const width = Math.max(...GLOSSARY.map(([name]) => name.length));
  const lines = GLOSSARY.map(
    ([name, meaning]) => `  ${colors.bold(name.padEnd(width))}  ${meaning}`,
  );
  return [
    colors.bold('What the numbers mean'),
    ...lines,
    '',
    `Every flag: ${colors.bold('upsync sync --help')}, ${colors.bold('upsync run --help')}; the server and its fault injection: ${colors.bold('upsync serve --help')}.`,
    '',
  ].join('\n');
}
