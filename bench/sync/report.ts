// The three outputs of a run: latest.json (everything), latest.md (a table people read) and
// latest.svg (a bar chart drawn by hand: one group per scenario, one bar per contender).
import type { Contender } from './contenders.ts';
import type { BenchOutcome, ChartMetric, Figures, ScenarioResult } from './harness.ts';
import type { Machine } from './machine.ts';
import type { BenchConfig } from './scenarios.ts';
import type { RequestCounts } from './server.ts';

export interface BenchReport extends BenchOutcome {
  readonly machine: Machine;
  readonly quick: boolean;
  readonly totalSeconds: number;
  readonly contenders: Record<Contender, string>;
  readonly notes: readonly string[];
}

export const CONTENDER_NOTES: Record<Contender, string> = {
  upsync:
    'the upsync CLI as users run it: `upsync sync DIR --json` as a child process, default --concurrency 16; a fresh state folder for each initial sync, the kept one for re-syncs; wall time from spawn to exit',
  ceiling:
    'one listing, then a PUT of every file the listing lacks, with the headers upsync sends (Content-Digest, Idempotency-Key), through an undici Pool of 16 connections; reading and hashing the files is done before its clock starts, so its rate is the fire phase only',
  naive:
    'for each file, one at a time: HEAD, then PUT unless the ETag equals its SHA-256; global fetch (keep-alive); no retries',
  'hand-rolled':
    'p-queue concurrency 10 + got with its default retry (2 retries, honours Retry-After); PUTs every file, no listing, no HEAD',
};

export function buildReport(
  config: BenchConfig,
  outcome: BenchOutcome,
  machine: Machine,
  totalSeconds: number,
): BenchReport {
  return {
    machine,
    quick: config.quick,
    totalSeconds: Math.round(totalSeconds),
    contenders: CONTENDER_NOTES,
    notes: [
      "Every server is `upsync serve` with durable storage (SQLite WAL, fdatasync before each answer) in its own child process on 127.0.0.1, a fresh data folder for each contender and round; request counts are the server's (/metrics), project routes only.",
      'Rounds alternate the order of the contenders; figures are medians over rounds, request counts those of the median round.',
      'The machine is shared with other work (see loadAverageAtStart): single samples are noisy, read the medians and ratios.',
    ],
    ...outcome,
  };
}

const num = (value: number, digits = 0): string =>
  Number.isFinite(value)
    ? value.toLocaleString('en-US', {
        minimumFractionDigits: digits,
        maximumFractionDigits: digits,
      })
    : '-';

export function formatRequests(counts: RequestCounts): string {
  const parts: string[] = [];
  for (const method of Object.keys(counts).sort()) {
    const byStatus = counts[method]!;
    const total = Object.values(byStatus).reduce((a, b) => a + b, 0);
    const statuses = Object.keys(byStatus)
      .sort()
      .map((status) => `${status}: ${num(byStatus[status]!)}`)
      .join(', ');
    parts.push(`${method} ${num(total)} (${statuses})`);
  }
  return parts.length ? parts.join('; ') : 'none';
}

function baseline(scenario: ScenarioResult, contender: Contender): Figures | undefined {
  return scenario.contenders.find((c) => c.contender === contender)?.median;
}

/** How many times faster than `base` (by the time each took); '-' without a base. */
function speedup(figures: Figures, base: Figures | undefined): string {
  return base === undefined || !(figures.durationMs > 0)
    ? '-'
    : `${num(base.durationMs / figures.durationMs, 2)}x`;
}

/** Whole numbers, but a rate below 10 keeps a decimal (one 1 GiB file is 0.1 files/s). */
const rate = (value: number): string => num(value, value < 10 ? 2 : 0);

export function toMarkdown(report: BenchReport): string {
  const m = report.machine;
  const lines = [
    `# upsync sync benchmark${report.quick ? ' (quick mode: tiny counts, not for comparison)' : ''}`,
    '',
    `Measured ${m.date} on ${m.cpuModel}, ${m.cores} cores, ${num(m.memoryBytes / 1024 ** 3, 1)} GiB, ${m.os}, Node ${m.node}; load average ${m.loadAverageAtStart} at start; run took ${num(report.totalSeconds)} s.`,
    '',
    ...(m.git
      ? [
          `Code: commit ${m.git.commit.slice(0, 12)}${m.git.modified.length ? `, with uncommitted changes (other work in progress) in ${m.git.modified.join(', ')}` : ''}.`,
          '',
        ]
      : []),
    ...report.notes.map((note) => `- ${note}`),
    '',
    '| Scenario | Contender | Wall (s) | Files/s | Requests/s | Requests (server, by method and status) | 429s | Peak RSS (MB) | Speed vs ceiling | Speed vs naive |',
    '| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |',
  ];
  for (const scenario of report.scenarios) {
    const ceiling = baseline(scenario, 'ceiling');
    const naive = baseline(scenario, 'naive');
    for (const { contender, median: f, samples } of scenario.contenders) {
      const rounds = samples.length > 1 ? ` (${samples.length} rounds)` : '';
      const failed = samples.some((s) => s.exitCode !== 0) ? ' (exit != 0)' : '';
      lines.push(
        `| ${scenario.title}${rounds} | ${contender}${failed} | ${num(f.wallMs / 1000, 2)} | ${rate(f.filesPerSec)} | ${rate(f.requestsPerSec)} | ${formatRequests(f.requests)} | ${num(f.status429)} | ${f.peakRssBytes === null ? '-' : num(f.peakRssBytes / 1e6)} | ${speedup(f, ceiling)} | ${speedup(f, naive)} |`,
      );
    }
  }
  lines.push(
    '',
    '## Targets',
    '',
    '| Scenario | Target | Measured (upsync) | Result |',
    '| --- | --- | --- | --- |',
  );
  for (const t of report.targets) {
    lines.push(`| ${t.scenario} | ${t.target} | ${t.measured} | ${t.pass ? 'pass' : '**FAIL**'} |`);
  }
  lines.push('', '## Contenders', '');
  for (const [name, note] of Object.entries(report.contenders))
    lines.push(`- **${name}**: ${note}`);
  lines.push(
    '',
    "The ceiling's files/s and requests/s use its fire phase; every other figure uses wall time. Speed vs X: X's time divided by the contender's (above 1: faster than X).",
    '',
  );
  return lines.join('\n');
}

// ---- SVG -------------------------------------------------------------------------------

const COLORS: Record<Contender, string> = {
  upsync: '#2563eb',
  ceiling: '#6b7280',
  naive: '#ea580c',
  'hand-rolled': '#16a34a',
};

const METRICS: Record<
  ChartMetric,
  { label: string; value: (f: Figures) => number | null; unit: string; digits: number }
> = {
  wallSeconds: {
    label: 'seconds (ceiling: fire phase only; shorter is better)',
    value: (f) => f.durationMs / 1000,
    unit: 's',
    digits: 2,
  },
  okPutsPerSec: {
    label: 'successful PUTs per second (higher is better)',
    value: (f) => f.okPutsPerSec,
    unit: '/s',
    digits: 1,
  },
  peakRssMB: {
    label: 'peak client RSS, MB (lower is better)',
    value: (f) => (f.peakRssBytes === null ? null : f.peakRssBytes / 1e6),
    unit: ' MB',
    digits: 0,
  },
};

function escapeXml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

export function toSvg(report: BenchReport): string {
  const width = 960;
  const labelWidth = 110;
  const barMax = 640;
  const rowHeight = 24;
  const barHeight = 17;
  const groupGap = 20;
  const parts: string[] = [];
  let y = 34;
  const m = report.machine;
  parts.push(
    `<text x="16" y="24" class="title">upsync sync benchmark${report.quick ? ' (quick mode)' : ''}: medians, ${escapeXml(m.cpuModel)}, ${m.cores} cores, Node ${escapeXml(m.node)}, ${escapeXml(m.date.slice(0, 10))}</text>`,
  );
  // Legend.
  let legendX = 16;
  y += 10;
  for (const [name, color] of Object.entries(COLORS)) {
    parts.push(`<rect x="${legendX}" y="${y}" width="14" height="14" fill="${color}"/>`);
    parts.push(`<text x="${legendX + 20}" y="${y + 12}" class="label">${escapeXml(name)}</text>`);
    legendX += 30 + name.length * 8;
  }
  y += 30;
  for (const scenario of report.scenarios) {
    const metric = METRICS[scenario.chart];
    const targets = report.targets.filter((t) => t.scenario === scenario.id);
    const verdict = targets.length
      ? ` (targets: ${targets.filter((t) => t.pass).length} of ${targets.length} met)`
      : '';
    parts.push(
      `<text x="16" y="${y + 14}" class="group">${escapeXml(`${scenario.title}: ${metric.label}${verdict}`)}</text>`,
    );
    y += 22;
    const values = scenario.contenders.map((c) => metric.value(c.median) ?? 0);
    const max = Math.max(...values, Number.MIN_VALUE);
    scenario.contenders.forEach((c, index) => {
      const value = values[index]!;
      const length = Math.max(1, (value / max) * barMax);
      const top = y + (rowHeight - barHeight) / 2;
      parts.push(
        `<text x="${labelWidth - 8}" y="${top + 13}" class="label" text-anchor="end">${escapeXml(c.contender)}</text>`,
        `<rect class="bar" data-scenario="${scenario.id}" data-contender="${c.contender}" x="${labelWidth}" y="${top}" width="${length.toFixed(1)}" height="${barHeight}" fill="${COLORS[c.contender]}"><title>${escapeXml(`${c.contender}: ${value.toFixed(metric.digits)}${metric.unit}`)}</title></rect>`,
        `<text x="${(labelWidth + length + 6).toFixed(1)}" y="${top + 13}" class="value">${escapeXml(value.toFixed(metric.digits) + metric.unit)}</text>`,
      );
      y += rowHeight;
    });
    y += groupGap;
  }
  const height = y + 10;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif">`,
    '<style>.title{font-size:16px;font-weight:600}.group{font-size:14px;font-weight:600;fill:#111827}.label{font-size:13px;fill:#374151}.value{font-size:12px;fill:#111827}</style>',
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}
