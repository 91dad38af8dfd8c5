// The demo's sample folder: session logs of AI coding tools, one JSON object
// a line, in nested folders (tool/project/day/session-ID.jsonl), all drawn
// from one seed so a demo with the same seed writes byte-identical files.
import { seededRandom, type Random } from '@upsync/core';

export interface SampleFile {
  /** The path relative to the sample folder, with `/` separators. */
  readonly key: string;
  readonly content: string;
}

const TOOLS = ['claude-code', 'cursor', 'codex', 'aider'] as const;
const PROJECTS = ['webshop', 'infra', 'docs-site', 'ml-pipeline', 'mobile-app'] as const;
const MODELS = ['model-large', 'model-medium', 'model-fast'] as const;
const FILES = [
  'src/cart/checkout.ts',
  'src/api/orders.ts',
  'README.md',
  'terraform/main.tf',
  'pipeline/train.py',
  'app/screens/Login.tsx',
  'docs/getting-started.md',
  'package.json',
] as const;
const PROMPTS = [
  'why does the checkout test fail on CI but not locally?',
  'add retry with backoff to the orders client',
  'rename the config flag and update the docs',
  'the terraform plan wants to recreate the bucket, why?',
  'speed up the training data loader',
  'fix the login screen layout on small phones',
  'write a migration for the new column',
  'explain what this regex matches',
] as const;
const WORDS =
  'the test reads a stale fixture so the order total is off by one cent after rounding and the fix is to build the fixture inside the test then check the retry budget and the timeout before merging'.split(
    ' ',
  );

/** Days of the sample, from this one on (UTC), so keys and timestamps never depend on today. */
const FIRST_DAY_MS = Date.UTC(2025, 4, 1, 8, 0, 0);
const DAY_MS = 24 * 60 * 60 * 1000;

function pick<T>(random: Random, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!;
}

function between(random: Random, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}

function hex(random: Random, digits: number): string {
  let text = '';
  for (let i = 0; i < digits; i++) text += Math.floor(random() * 16).toString(16);
  return text;
}

function sentence(random: Random, min: number, max: number): string {
  const count = between(random, min, max);
  const words: string[] = [];
  for (let i = 0; i < count; i++) words.push(pick(random, WORDS));
  const text = words.join(' ');
  return `${text.charAt(0).toUpperCase()}${text.slice(1)}.`;
}

const line = (value: Record<string, unknown>): string => `${JSON.stringify(value)}\n`;

/** One session: a start line, then turns of prompt, tool calls and answer. */
function session(
  random: Random,
  tool: string,
  project: string,
  startMs: number,
): { id: string; text: string } {
  const id = hex(random, 12);
  let atMs = startMs;
  const ts = (): string => {
    atMs += between(random, 200, 20_000);
    return new Date(atMs).toISOString();
  };
  let text = line({
    type: 'session_start',
    session: id,
    tool,
    model: pick(random, MODELS),
    cwd: `/home/dev/${project}`,
    ts: new Date(atMs).toISOString(),
  });
  const turns = between(random, 2, 12);
  for (let turn = 0; turn < turns; turn++) {
    text += line({ type: 'user', session: id, turn, ts: ts(), text: pick(random, PROMPTS) });
    const calls = between(random, 0, 3);
    for (let call = 0; call < calls; call++) {
      const name = pick(random, ['read_file', 'edit_file', 'run_command'] as const);
      const input =
        name === 'run_command'
          ? { command: pick(random, ['npm test', 'git diff', 'terraform plan', 'pytest -x']) }
          : { path: pick(random, FILES) };
      const callId = `call_${hex(random, 8)}`;
      text += line({ type: 'tool_use', session: id, turn, ts: ts(), id: callId, name, input });
      text += line({
        type: 'tool_result',
        session: id,
        turn,
        ts: ts(),
        id: callId,
        ok: random() > 0.1,
        output: sentence(random, 4, 30),
      });
    }
    text += line({
      type: 'assistant',
      session: id,
      turn,
      ts: ts(),
      text: sentence(random, 8, 60),
      usage: {
        input_tokens: between(random, 500, 40_000),
        output_tokens: between(random, 50, 2_000),
      },
    });
  }
  return { id, text };
}

/** `count` session logs, deterministic by `seed`, sorted by key. */
export function sampleSessions(count: number, seed: number): SampleFile[] {
  if (!Number.isInteger(count) || count < 0) {
    throw new TypeError(`count must be an integer >= 0, got ${count}`);
  }
  const random = seededRandom(seed);
  const files = new Map<string, string>();
  while (files.size < count) {
    const tool = pick(random, TOOLS);
    const project = pick(random, PROJECTS);
    const dayMs = FIRST_DAY_MS + between(random, 0, 13) * DAY_MS;
    const startMs = dayMs + between(random, 0, 10 * 60 * 60) * 1000;
    const day = new Date(dayMs).toISOString().slice(0, 10);
    const { id, text } = session(random, tool, project, startMs);
    files.set(`${tool}/${project}/${day}/session-${id}.jsonl`, text);
  }
  return [...files]
    .map(([key, content]) => ({ key, content }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/**
 * What a tool appends while it streams an answer: one line per write, so
 * every rewrite of a live session log has new content.
 */
export function streamedLine(key: string, write: number, atMs: number): string {
  return line({
    type: 'assistant_delta',
    log: key,
    seq: write,
    ts: new Date(atMs).toISOString(),
    text: WORDS[write % WORDS.length],
  });
}
