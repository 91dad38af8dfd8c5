import { describe, expect, it } from 'vitest';
import { renderPanel } from './render-panel.ts';
import { sendingModel } from './panel-fixtures.ts';
import type { PanelModel } from './panel-model.ts';

// eslint-disable-next-line no-control-regex
const ANSI = /\u001B\[[0-9;]*m/g;
const plain = { width: 80, color: false };

describe('renderPanel', () => {
  it('draws a sending frame at 80 columns, without escape codes when color is off', () => {
    expect(renderPanel(sendingModel, plain)).toBe(
      [
        'upsync sync · sending · 7.4s elapsed',
        'progress  ████████████░░░░░░░░░░░░░░░░░░ 120/300  40%  ETA 12s',
        'items     90 created · 28 already there · 2 failed (1 dead-lettered)',
        'speed     15 items/s · 48 kB sent · 182 pending · 3 retrying',
        'workers   ▮▮▮▮▯▯▯▯ 4/8 (max 16)',
        'requests  2xx 118 · 4xx 2 · 5xx 3 · network 2 · 5 retries (backoff Σ 3.2s)',
        'pacing    rate 20/s of 25/s · adaptive · 3 queued · breaker closed',
        'errors    docs/a.md: HTTP 503 Service Unavailable (retrying)',
        '          docs/bad.md: HTTP 400 invalid body (dead-lettered)',
        'p pause · q stop',
      ].join('\n'),
    );
  });

  it('colors the same text when color is on', () => {
    const colored = renderPanel(sendingModel, { width: 80, color: true });
    expect(colored).toMatch(ANSI);
    expect(colored.replace(ANSI, '')).toBe(renderPanel(sendingModel, plain));
  });

  it('cuts every line to the width, marking the cut', () => {
    const frame = renderPanel(sendingModel, { width: 40, color: false });
    const lines = frame.split('\n');
    for (const line of lines) expect([...line].length).toBeLessThanOrEqual(40);
    expect(lines[2]).toBe('items     90 created · 28 already there…');
    const colored = renderPanel(sendingModel, { width: 40, color: true });
    expect(colored.replace(ANSI, '')).toBe(frame);
  });

  it('shows PAUSED and how to resume', () => {
    const frame = renderPanel({ ...sendingModel, paused: true }, plain);
    expect(frame.split('\n')[0]).toBe('upsync sync · PAUSED · 7.4s elapsed');
    expect(frame.split('\n').at(-1)).toBe('p resume · q stop');
  });

  it('shows an open breaker with its probe time, and a host without a rate limit', () => {
    const model: PanelModel = {
      ...sendingModel,
      pacing: null,
      breaker: { state: 'open', retryInMs: 3_000 },
    };
    expect(renderPanel(model, plain)).toContain(
      'pacing    no rate limit · breaker OPEN (probe in 3.0s)',
    );
  });

  it('scales the worker bar past 32 workers, and keeps a busy worker visible', () => {
    const model: PanelModel = { ...sendingModel, workers: { inFlight: 1, limit: 64, max: 64 } };
    expect(renderPanel(model, plain)).toContain(`workers   ▮${'▯'.repeat(31)} 1/64 (max 64)`);
  });

  it('shows the watching state of run instead of the progress bar', () => {
    const model: PanelModel = {
      ...sendingModel,
      command: 'run',
      phase: 'watching',
      watching: { changes: 12, coalesced: 3, sent: 9 },
    };
    const lines = renderPanel(model, plain).split('\n');
    expect(lines[0]).toBe('upsync run · watching · 7.4s elapsed');
    expect(lines[1]).toBe('watching  12 changes received · 3 coalesced · 9 sent');
    expect(lines.some((line) => line.startsWith('progress'))).toBe(false);
  });

  it('shows what stopping waits for, and the final frame without keys', () => {
    const stopping = renderPanel(
      { ...sendingModel, phase: 'stopping', paused: true, stopping: 'waiting for 4 sends' },
      plain,
    ).split('\n');
    expect(stopping[0]).toBe('upsync sync · stopping · 7.4s elapsed');
    expect(stopping.slice(-2)).toEqual(['stopping  waiting for 4 sends', 'q again: stop now']);

    const done = renderPanel({ ...sendingModel, phase: 'done', done: 300, etaMs: 0 }, plain);
    expect(done).toContain('300/300  100%  in 7.4s');
    expect(done).not.toContain('q stop');
  });

  it('marks a total still growing while the folder is scanned, and hides keys without a terminal', () => {
    const frame = renderPanel({ ...sendingModel, scanning: true, etaMs: null, keys: false }, plain);
    expect(frame).toContain('120/300+  40%  scanning the folder');
    expect(frame).not.toContain('p pause');
  });
});
