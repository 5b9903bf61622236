// The benchmark scenarios, what each one passes to the load generator, and
// which figures it reports. A figure reads one run: the load generator's JSON
// (`load`), the server's stats before and after the load (`before`, `after`),
// and, read from /proc, just before the load (`start`), at the start and end
// of the measured interval (`measure`, `done`) and while the storm's
// connections were all open (`hold`); and the wall time of the load (`wallS`).

const metric = (id, label, unit, better, value) => ({
  id,
  label,
  unit,
  better,
  value,
});

const numberOrNull = (value) =>
  typeof value == 'number' && Number.isFinite(value) ? value : null;

const DELIVERED = metric(
  'delivered',
  'delivered',
  'msg/s',
  'higher',
  ({load}) => numberOrNull(load.delivered_per_s),
);
const THROUGHPUT = metric(
  'throughput',
  'delivered',
  'MB/s',
  'higher',
  ({load}) => numberOrNull(load.mb_per_s),
);
const P50 = metric('p50', 'latency p50', 'ms', 'lower', ({load}) =>
  numberOrNull(load.latency_ms?.p50),
);
const P99 = metric('p99', 'latency p99', 'ms', 'lower', ({load}) =>
  numberOrNull(load.latency_ms?.p99),
);
const ALL_EXCHANGED = metric(
  'allExchanged',
  'all exchanged',
  'ms',
  'lower',
  ({load}) => numberOrNull(load.all_exchanged_ms),
);
const CONNECT_P99 = metric(
  'connectP99',
  'connect p99',
  'ms',
  'lower',
  ({load}) => numberOrNull(load.connect_ms?.p99),
);
const RSS_PER_CONNECTION = metric(
  'rssPerConnection',
  'server RSS/conn',
  'KiB',
  'lower',
  ({load, start, hold}) =>
    start && hold && load.connections
      ? numberOrNull((hold.rssKiB - start.rssKiB) / load.connections)
      : null,
);
// From /proc over the measured interval when the load generator marked it,
// else over its whole run.
const SERVER_CPU = metric(
  'serverCpu',
  'server CPU',
  'cores',
  'lower',
  ({load, before, after, measure, done, wallS}) =>
    measure && done
      ? numberOrNull((done.cpuMs - measure.cpuMs) / 1000 / load.duration_s)
      : numberOrNull((after.cpuMs - before.cpuMs) / 1000 / wallS),
);
// The server's own figure, its histogram restarted by the sample taken just
// before the load.
const EVENT_LOOP_DELAY = metric(
  'eventLoopDelay',
  'server loop delay p99',
  'ms',
  'lower',
  ({after}) => numberOrNull(after.eldP99Ms),
);
const PEAK_RSS = metric(
  'peakRss',
  'server peak RSS',
  'MiB',
  'lower',
  ({after}) => numberOrNull(after.peakRssKiB / 1024),
);

// Redis's own CPU over the measured interval, in the cluster scenario.
const REDIS_CPU = metric(
  'redisCpu',
  'Redis CPU',
  'cores',
  'lower',
  ({load, redisMeasure, redisDone}) =>
    redisMeasure && redisDone
      ? numberOrNull(
          (redisDone.cpuMs - redisMeasure.cpuMs) / 1000 / load.duration_s,
        )
      : null,
);

// Over the whole run: saves, like the memory they hold, pile up during the warm-up too.
const SAVES = metric(
  'saves',
  'persister saves',
  'count',
  'lower',
  ({before, after}) =>
    numberOrNull((after.saves ?? NaN) - (before.saves ?? NaN)),
);

const timing = ({duration, warmup}) => [
  '--duration-s',
  String(duration),
  '--warmup-s',
  String(warmup),
];

// Connections opened all at once, each greeting its path once; memory is read while all stay open.
const stormOf = ({connections, paths, ...scenario}) => ({
  mode: 'storm',
  persister: null,
  servers: ['reference', 'native', 'relay'],
  ...scenario,
  args: (plan) => [
    '--connections',
    String(connections),
    '--paths',
    String(paths),
    '--timeout-s',
    '30',
    '--hold-ms',
    String(plan.holdMs),
  ],
  metrics: [
    ALL_EXCHANGED,
    CONNECT_P99,
    RSS_PER_CONNECTION,
    EVENT_LOOP_DELAY,
    PEAK_RSS,
  ],
});

// Clients writing to a persisted path: what the server client must apply and save.
const persistedWrites = (scenario) => ({
  ...scenario,
  mode: 'writes',
  servers: ['reference', 'native'],
  args: (plan) => ['--clients', '32', '--window', '4', ...timing(plan)],
  metrics: [DELIVERED, P99, SERVER_CPU, PEAK_RSS, SAVES],
});

export const SCENARIOS = [
  {
    id: 'fanout',
    title: 'Fan-out',
    shape:
      '1 path × 32 clients, ContentHashes broadcasts, ≤4 in flight per sender',
    mode: 'fanout',
    persister: null,
    servers: ['reference', 'native', 'relay'],
    args: (plan) => ['--clients', '32', '--window', '4', ...timing(plan)],
    metrics: [DELIVERED, P50, P99, SERVER_CPU, EVENT_LOOP_DELAY, PEAK_RSS],
  },
  {
    id: 'scraped',
    title: 'Fan-out, metrics scraped',
    shape:
      'the fan-out load while the server reads its Prometheus registry every 100 ms',
    mode: 'fanout',
    persister: null,
    scrapeMs: 100,
    servers: ['reference', 'native'],
    args: (plan) => ['--clients', '32', '--window', '4', ...timing(plan)],
    metrics: [DELIVERED, P50, P99, SERVER_CPU, EVENT_LOOP_DELAY],
  },
  {
    id: 'authorized',
    title: 'Fan-out, authorized',
    shape:
      'the fan-out load with an authorize hook that grants each client write access',
    mode: 'fanout',
    persister: null,
    authorize: true,
    servers: ['reference', 'native'],
    args: (plan) => ['--clients', '32', '--window', '4', ...timing(plan)],
    metrics: [DELIVERED, P50, P99, SERVER_CPU, EVENT_LOOP_DELAY],
  },
  {
    id: 'paths',
    title: 'Many paths',
    shape: '500 paths × 2 clients, 5,000 msg/s offered in total',
    mode: 'paths',
    persister: null,
    servers: ['reference', 'native', 'relay'],
    args: (plan) => ['--paths', '500', '--rate', '5000', ...timing(plan)],
    chart: P99,
    metrics: [P50, P99, DELIVERED, SERVER_CPU, EVENT_LOOP_DELAY, PEAK_RSS],
  },
  stormOf({
    id: 'storm',
    title: 'Connection storm',
    shape:
      '2,000 connections at once over 200 paths, each greets and is answered',
    connections: 2000,
    paths: 200,
  }),
  stormOf({
    id: 'connections',
    title: '10,000 connections',
    shape:
      '10,000 connections at once over 1,000 paths, each greets and is answered, then all stay open',
    connections: 10000,
    paths: 1000,
  }),
  stormOf({
    id: 'storm-upgraded',
    title: 'Connection storm, upgraded natively',
    shape: 'the storm, the native server answering upgrades on its plane',
    connections: 2000,
    paths: 200,
    nativeUpgrade: true,
    servers: ['reference', 'native'],
  }),
  stormOf({
    id: 'connections-upgraded',
    title: '10,000 connections, upgraded natively',
    shape:
      'the 10,000 connections, the native server answering upgrades on its plane',
    connections: 10000,
    paths: 1000,
    nativeUpgrade: true,
    servers: ['reference', 'native'],
  }),
  stormOf({
    id: 'storm-listened',
    title: 'Connection storm, listening natively',
    shape: 'the storm, the native server accepting on its plane',
    connections: 2000,
    paths: 200,
    nativeListen: true,
    servers: ['reference', 'native'],
  }),
  stormOf({
    id: 'connections-listened',
    title: '10,000 connections, listening natively',
    shape: 'the 10,000 connections, the native server accepting on its plane',
    connections: 10000,
    paths: 1000,
    nativeListen: true,
    servers: ['reference', 'native'],
  }),
  {
    id: 'large',
    title: 'Large messages',
    shape:
      '1 path × 4 clients, 256 KiB ContentDiff bodies, ≤2 in flight per sender',
    mode: 'large',
    persister: null,
    servers: ['reference', 'native', 'relay'],
    args: (plan) => [
      '--clients',
      '4',
      '--window',
      '2',
      '--body-kib',
      '256',
      ...timing(plan),
    ],
    metrics: [THROUGHPUT, P50, P99, EVENT_LOOP_DELAY, PEAK_RSS],
  },
  {
    id: 'cluster',
    title: 'Cluster fan-out',
    shape:
      'fan-out across 2 native servers joined by Redis, 16 clients on each; TinyBase serves all 32 in one process',
    mode: 'fanout',
    persister: null,
    servers: ['reference', 'native'],
    nodes: 2,
    args: (plan) => ['--clients', '32', '--window', '4', ...timing(plan)],
    metrics: [DELIVERED, P50, P99, SERVER_CPU, REDIS_CPU],
  },
  {
    id: 'persisted',
    title: 'Persisted path',
    shape:
      'fan-out again, the server holding a persister (and its client) per path',
    mode: 'persisted',
    persister: 'memory',
    servers: ['reference', 'native'],
    args: (plan) => ['--clients', '32', '--window', '4', ...timing(plan)],
    metrics: [DELIVERED, P50, P99, SERVER_CPU, EVENT_LOOP_DELAY, PEAK_RSS],
  },
  persistedWrites({
    id: 'writes',
    title: 'Persisted writes',
    shape:
      '1 path × 32 clients each writing its own cell, ≤4 in flight per sender, an in-memory persister',
    persister: 'memory',
  }),
  persistedWrites({
    id: 'writes-file',
    title: 'Persisted writes, file',
    shape: "the same writes, with TinyBase's file persister per path",
    persister: 'file',
  }),
];

export const SERVER_TITLES = {
  reference: 'TinyBase (reference)',
  native: 'native',
  relay: 'bare relay',
};
