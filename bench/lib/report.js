// Medians across runs, and the three views of them: the console table,
// BENCHMARKS.md and the SVG chart.

import {SERVER_TITLES} from './scenarios.js';

export const median = (values) => {
  const sorted = values.filter((value) => value != null).sort((a, b) => a - b);
  if (!sorted.length) {
    return null;
  }
  const middle = sorted.length >> 1;
  return sorted.length % 2
    ? sorted[middle]
    : (sorted[middle - 1] + sorted[middle]) / 2;
};

// One scenario against one server: the median of every figure over the runs
// that completed, and why the others did not.
export const summarize = (scenario, outcome) => {
  const completed = outcome.runs.filter((run) => run.load);
  return {
    unavailable: outcome.unavailable,
    completed: completed.length,
    attempted: outcome.runs.length,
    failures: outcome.runs.filter((run) => run.error).map((run) => run.error),
    values: Object.fromEntries(
      scenario.metrics.map((metric) => [
        metric.id,
        median(completed.map((run) => metric.value(run))),
      ]),
    ),
    loadgenCores: median(completed.map((run) => run.load.loadgen_cores)),
    busy: median(completed.map((run) => run.busy)),
    shortfalls: completed.flatMap(({load}) =>
      load.ready_complete === false
        ? ['not every client heard all its peers before sending began']
        : load.ready_rounds > 1
          ? [
              'readiness pings sent after every handshake had completed ' +
                `went missing and were sent again (${load.ready_rounds} rounds)`,
            ]
          : load.all_exchanged === false
            ? [
                `only ${load.exchanged} of ${load.connections} connections ` +
                  'exchanged a first message in time',
              ]
            : [],
    ),
    loadErrors: completed.reduce((sum, run) => sum + run.load.errors.count, 0),
    loadErrorKinds: [
      ...new Set(
        completed.flatMap((run) => Object.keys(run.load.errors.kinds)),
      ),
    ],
    ignoredErrors: completed.reduce(
      (sum, run) => sum + (run.after.ignoredErrors ?? 0),
      0,
    ),
    ignoredErrorSamples: [
      ...new Set(
        completed.flatMap((run) => run.after.ignoredErrorSamples ?? []),
      ),
    ],
  };
};

// How many times better native is: above 1 means more throughput, or less
// latency, time, CPU or memory.
export const gain = (metric, reference, native) =>
  reference == null || native == null || reference == 0 || native == 0
    ? null
    : metric.better == 'higher'
      ? native / reference
      : reference / native;

export const formatNumber = (value) => {
  if (value == null) {
    return 'n/a';
  }
  const magnitude = Math.abs(value);
  const digits = magnitude >= 100 ? 0 : magnitude >= 10 ? 1 : 2;
  return value.toLocaleString('en-US', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
};

const formatLoad = (summary) =>
  summary?.completed
    ? `${formatNumber(summary.loadgenCores)}c·${
        summary.busy == null ? '?' : Math.round(summary.busy * 100)
      }%`
    : '';

const formatGain = (value) => (value == null ? 'n/a' : `${value.toFixed(2)}×`);

const SERVERS = ['reference', 'native', 'relay'];

const columnsFor = (scenarios) =>
  SERVERS.filter((server) =>
    scenarios.some((scenario) => scenario.servers.includes(server)),
  );

// Rows of cells shared by the console and Markdown tables.
const tableRows = (scenarios, summaries) => {
  const servers = columnsFor(scenarios);
  const header = ['scenario', 'figure'];
  for (const server of servers) {
    header.push(SERVER_TITLES[server], 'loadgen·busy');
    if (server == 'native') {
      header.push('native gain');
    }
  }
  const rows = [];
  for (const scenario of scenarios) {
    scenario.metrics.forEach((metric, index) => {
      const row = [
        index ? '' : scenario.title,
        `${metric.label} (${metric.unit})`,
      ];
      for (const server of servers) {
        const summary = summaries[scenario.id][server];
        const value = summary?.values[metric.id];
        row.push(
          summary
            ? formatNumber(value) + (summary.loadErrors ? ' !' : '')
            : '—',
          summary ? formatLoad(summary) : '',
        );
        if (server == 'native') {
          const reference = summaries[scenario.id].reference?.values[metric.id];
          row.push(summary ? formatGain(gain(metric, reference, value)) : '—');
        }
      }
      rows.push(row);
    });
  }
  return [header, rows];
};

export const consoleTable = (scenarios, summaries) => {
  const [header, rows] = tableRows(scenarios, summaries);
  const widths = header.map((cell, column) =>
    Math.max(cell.length, ...rows.map((row) => row[column].length)),
  );
  const line = (cells) =>
    cells
      .map((cell, column) =>
        column < 2
          ? cell.padEnd(widths[column])
          : cell.padStart(widths[column]),
      )
      .join('  ')
      .trimEnd();
  return [
    line(header),
    widths.map((width) => '-'.repeat(width)).join('  '),
    ...rows.map(line),
  ].join('\n');
};

export const markdownTable = (scenarios, summaries) => {
  const [header, rows] = tableRows(scenarios, summaries);
  const line = (cells) => `| ${cells.join(' | ')} |`;
  return [
    line(header),
    line(header.map((_, column) => (column < 2 ? '---' : '---:'))),
    ...rows.map(line),
  ].join('\n');
};

const plural = (count, noun) => `${count} ${noun}${count == 1 ? '' : 's'}`;

// Everything a reader needs to distrust a figure: servers that could not be
// run, runs that failed, errors the load saw or the server reported.
export const problems = (scenarios, summaries) => {
  const notes = [];
  const unavailable = new Map();
  for (const scenario of scenarios) {
    for (const server of scenario.servers) {
      const summary = summaries[scenario.id][server];
      if (summary.unavailable) {
        unavailable.set(server, summary.unavailable);
        continue;
      }
      const where = `${scenario.title}, ${SERVER_TITLES[server]}`;
      if (summary.failures.length) {
        notes.push(
          `${where}: ${summary.failures.length} of ${summary.attempted} runs failed: ` +
            summary.failures[0].split('\n')[0],
        );
      }
      if (summary.shortfalls.length) {
        notes.push(
          `${where}: in ${plural(summary.shortfalls.length, 'run')}, ` +
            summary.shortfalls[0],
        );
      }
      if (summary.loadErrors) {
        notes.push(
          `${where}: the load generator saw ${plural(summary.loadErrors, 'error')} ` +
            `(${summary.loadErrorKinds.join('; ')}); figures marked !`,
        );
      }
      if (summary.ignoredErrors) {
        notes.push(
          `${where}: the server reported ${plural(summary.ignoredErrors, 'ignored error')} ` +
            `(${summary.ignoredErrorSamples.join('; ')})`,
        );
      }
    }
  }
  for (const [server, error] of unavailable) {
    notes.unshift(
      `${SERVER_TITLES[server]}: n/a, it could not be started: ${error.split('\n')[0]}`,
    );
  }
  return notes;
};

const escapeXml = (text) =>
  String(text).replace(
    /[&<>"]/g,
    (char) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'})[char],
  );

const BAR_COLORS = {reference: '#8a8f98', native: '#d9480f', relay: '#c5cad3'};

// One panel per scenario, showing its headline figure (its `chart` metric, or
// else its first) for every server, each panel scaled to its largest bar.
export const chartSvg = (scenarios, summaries, caption) => {
  const width = 800;
  const labelWidth = 170;
  const barMax = 420;
  const barHeight = 18;
  const gap = 6;
  const parts = [];
  let y = 52;
  for (const scenario of scenarios) {
    const metric = scenario.chart ?? scenario.metrics[0];
    const bars = scenario.servers.map((server) => [
      server,
      summaries[scenario.id][server]?.values[metric.id] ?? null,
    ]);
    const reference = summaries[scenario.id].reference?.values[metric.id];
    const versusReference = (server, value) => {
      const times = server == 'native' ? gain(metric, reference, value) : null;
      return times == null
        ? ''
        : times >= 1
          ? ` (${times.toFixed(2)}× better)`
          : ` (${(1 / times).toFixed(2)}× worse)`;
    };
    const largest = Math.max(...bars.map(([, value]) => value ?? 0)) || 1;
    parts.push(
      `<text x="12" y="${y}" class="title">${escapeXml(scenario.title)}: ` +
        `${escapeXml(metric.label)} (${escapeXml(metric.unit)}, ` +
        `${metric.better} is better)</text>`,
    );
    y += 10;
    for (const [server, value] of bars) {
      const length =
        value == null ? 0 : Math.max(1, (value / largest) * barMax);
      parts.push(
        `<text x="${labelWidth - 8}" y="${y + 13}" class="label">` +
          `${escapeXml(SERVER_TITLES[server])}</text>`,
        `<rect x="${labelWidth}" y="${y}" width="${length.toFixed(1)}" ` +
          `height="${barHeight}" fill="${BAR_COLORS[server]}"/>`,
        `<text x="${(labelWidth + length + 6).toFixed(1)}" y="${y + 13}" class="value">` +
          `${escapeXml(formatNumber(value) + versusReference(server, value))}</text>`,
      );
      y += barHeight + gap;
    }
    y += 22;
  }
  parts.push(
    `<text x="12" y="${y}" class="caption">${escapeXml(caption)}</text>`,
  );
  const height = y + 16;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif">
<style>
.title { font-size: 14px; font-weight: 600; fill: #1f2328; }
.label { font-size: 12px; fill: #1f2328; text-anchor: end; }
.value { font-size: 12px; fill: #1f2328; }
.caption { font-size: 11px; fill: #59636e; }
</style>
<rect width="100%" height="100%" fill="#ffffff"/>
<text x="12" y="22" font-size="16" font-weight="700" fill="#1f2328">tinybase-ws-server-native vs TinyBase's createWsServer</text>
${parts.join('\n')}
</svg>
`;
};
