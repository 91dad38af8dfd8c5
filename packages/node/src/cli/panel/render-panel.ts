import picocolors from 'picocolors';
import { shortBytes, shortDuration, shortRate } from './format.ts';
import type { PanelModel } from './panel-model.ts';

export interface RenderOptions {
  /** Columns: every line is cut to fit, so the terminal never wraps a frame. */
  readonly width: number;
  /** Off: plain text, not one escape code. */
  readonly color: boolean;
}

type Style = 'bold' | 'dim' | 'green' | 'red' | 'yellow' | 'cyan';
type Segment = readonly [text: string, style?: Style];
type Line = Segment[];

/** Label column width, so the values line up. */
const LABEL = 10;
const MAX_WORKER_CELLS = 32;

const label = (text: string): Segment => [text.padEnd(LABEL), 'dim'];
const sep: Segment = [' · ', 'dim'];

/** Joins parts with a dim middle dot. */
function joined(parts: Line[]): Line {
  const line: Line = [];
  parts.forEach((part, index) => {
    if (index > 0) line.push(sep);
    line.push(...part);
  });
  return line;
}

/** Cuts a line to `width` visible characters (an ellipsis marks the cut), then colors it. */
function fit(line: Line, width: number, color: boolean): string {
  const colors = picocolors.createColors(color);
  let left = Math.max(1, width);
  let out = '';
  for (const [text, style] of line) {
    const chars = [...text];
    let piece = text;
    if (chars.length > left) piece = `${chars.slice(0, Math.max(0, left - 1)).join('')}…`;
    left -= Math.min(chars.length, left);
    out += style ? colors[style](piece) : piece;
    if (left === 0) break;
  }
  return out.trimEnd();
}

function progressLine(model: PanelModel, width: number): Line {
  const { done, total } = model;
  const ratio = total === 0 ? 0 : Math.min(1, done / total);
  const cells = Math.max(10, Math.min(30, width - 50));
  const full = Math.round(ratio * cells);
  const count = `${done}/${total}${model.scanning ? '+' : ''}`;
  const eta = model.scanning
    ? 'scanning the folder'
    : model.phase === 'done'
      ? `in ${shortDuration(model.elapsedMs)}`
      : model.etaMs === null
        ? 'ETA --'
        : `ETA ${shortDuration(model.etaMs)}`;
  return [
    label('progress'),
    ['█'.repeat(full), 'green'],
    ['░'.repeat(cells - full), 'dim'],
    [` ${count}  ${Math.floor(ratio * 100)}%  `],
    [eta, 'dim'],
  ];
}

function outcomesLine(model: PanelModel): Line {
  const o = model.outcomes;
  const parts: Line[] = [[[`${o.created} created`]]];
  if (o.updated > 0) parts.push([[`${o.updated} updated`]]);
  if (o.deleted > 0) parts.push([[`${o.deleted} deleted`]]);
  if (o.skipped > 0) parts.push([[`${o.skipped} already there`]]);
  if (o.errored > 0) {
    const dead = model.deadLettered > 0 ? ` (${model.deadLettered} dead-lettered)` : '';
    parts.push([[`${o.errored} failed${dead}`, 'red']]);
  }
  if (o.timedOut > 0) parts.push([[`${o.timedOut} timed out`, 'yellow']]);
  return [label('items'), ...joined(parts)];
}

function speedLine(model: PanelModel): Line {
  const parts: Line[] = [[[`${shortRate(model.itemsPerSec)} items/s`, 'bold']]];
  parts.push([[`${shortBytes(model.bytesSent)} sent`]]);
  if (model.pending !== null) parts.push([[`${model.pending} pending`]]);
  if (model.retrying > 0) parts.push([[`${model.retrying} retrying`, 'yellow']]);
  return [label('speed'), ...joined(parts)];
}

function workersLine(model: PanelModel): Line {
  const { inFlight, limit, max } = model.workers;
  const cells = Math.max(1, Math.min(limit, MAX_WORKER_CELLS));
  // Past 32 workers one cell stands for several, rounded so a busy worker always shows.
  const busy = Math.min(cells, Math.ceil((inFlight * cells) / Math.max(1, limit)));
  return [
    label('workers'),
    ['▮'.repeat(busy), 'cyan'],
    ['▯'.repeat(cells - busy), 'dim'],
    [` ${inFlight}/${limit}`],
    [` (max ${max})`, 'dim'],
  ];
}

function requestsLine(model: PanelModel): Line {
  const s = model.requests.byStatus;
  const count = (name: string, value: number, style: Style): Line => [
    [`${name} `, 'dim'],
    [String(value), value > 0 ? style : 'dim'],
  ];
  const parts: Line[] = [
    count('2xx', s['2xx'] + s['1xx'] + s['3xx'], 'green'),
    count('4xx', s['4xx'], 'yellow'),
    count('5xx', s['5xx'], 'red'),
    count('network', s.network, 'red'),
    [
      [`${model.retries} retries`],
      ...(model.backoffMs > 0
        ? [[` (backoff Σ ${shortDuration(model.backoffMs)})`, 'dim'] as Segment]
        : []),
    ],
  ];
  return [label('requests'), ...joined(parts)];
}

function pacingLine(model: PanelModel): Line {
  const parts: Line[] = [];
  const pacing = model.pacing;
  if (pacing && pacing.ratePerSec !== null) {
    const ceiling = pacing.ceilingPerSec === null ? '' : ` of ${shortRate(pacing.ceilingPerSec)}/s`;
    parts.push([[`rate ${shortRate(pacing.ratePerSec)}/s${ceiling}`]]);
    parts.push([[pacing.adaptive ? 'adaptive' : 'fixed', 'dim']]);
  } else {
    parts.push([['no rate limit', 'dim']]);
  }
  if (pacing && pacing.queued > 0) parts.push([[`${pacing.queued} queued`, 'yellow']]);
  const breaker = model.breaker;
  if (breaker.state === 'closed') parts.push([['breaker closed', 'dim']]);
  else {
    const probe =
      breaker.retryInMs === null ? '' : ` (probe in ${shortDuration(breaker.retryInMs)})`;
    parts.push([[`breaker ${breaker.state.toUpperCase()}${probe}`, 'red']]);
  }
  return [label('pacing'), ...joined(parts)];
}

function errorLines(model: PanelModel): Line[] {
  return model.errors.map((error, index) => [
    label(index === 0 ? 'errors' : ''),
    [error.key, 'bold'],
    [`: ${error.cause} `],
    [`(${error.state})`, error.state === 'retrying' ? 'yellow' : 'red'],
  ]);
}

function headline(model: PanelModel): Line {
  // A stop pauses the engine too; "stopping" says more than "PAUSED" then.
  const state: Segment =
    model.phase === 'stopping'
      ? ['stopping', 'yellow']
      : model.paused && model.phase !== 'done'
        ? ['PAUSED', 'yellow']
        : [model.phase, 'cyan'];
  return [
    [`upsync ${model.command}`, 'bold'],
    sep,
    state,
    sep,
    [`${shortDuration(model.elapsedMs)} elapsed`, 'dim'],
  ];
}

function keysLine(model: PanelModel): Line | null {
  if (!model.keys || model.phase === 'done') return null;
  if (model.phase === 'stopping') return [['q again: stop now', 'dim']];
  return [[model.paused ? 'p resume · q stop' : 'p pause · q stop', 'dim']];
}

/**
 * One frame of the live panel, from a model alone: the same model and options
 * always give the same text, which is what the tests check.
 */
export function renderPanel(model: PanelModel, options: RenderOptions): string {
  const lines: Line[] = [headline(model)];
  if (model.watching) {
    const w = model.watching;
    lines.push([
      label('watching'),
      ...joined([
        [[`${w.changes} changes received`]],
        [[`${w.coalesced} coalesced`]],
        [[`${w.sent} sent`]],
      ]),
    ]);
  } else {
    lines.push(progressLine(model, options.width));
  }
  lines.push(
    outcomesLine(model),
    speedLine(model),
    workersLine(model),
    requestsLine(model),
    pacingLine(model),
  );
  lines.push(...errorLines(model));
  if (model.stopping !== null && model.phase === 'stopping') {
    lines.push([label('stopping'), [model.stopping, 'yellow']]);
  }
  const keys = keysLine(model);
  if (keys) lines.push(keys);
  return lines.map((line) => fit(line, options.width, options.color)).join('\n');
}
