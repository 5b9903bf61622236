// A WsServer's metrics: the relay's counters, kept in Rust where things happen and read without
// pausing it, plus what only the JS thread can see (its event-loop delay). They read in
// prom-client's own format, so a user's Registry shows them beside the rest of the application's.

import {monitorEventLoopDelay} from 'node:perf_hooks';
import {getPlaneStats} from './plane-stats.js';

export const DEFAULT_PREFIX = 'tinybase_ws_';

const PREFIX = /^([a-zA-Z_:][a-zA-Z0-9_:]*)?$/;
const NANOSECONDS_PER_SECOND = 1e9;
const EVENT_LOOP_RESOLUTION_MS = 20;
const RESOLUTION_NANOSECONDS = EVENT_LOOP_RESOLUTION_MS * 1e6;

// wsServer -> its metrics, so the WsServer object itself stays exactly TinyBase's.
const sources = new WeakMap();

const gauge = (name, help, value) => ({
  name,
  help,
  kind: 'gauge',
  series: [{suffix: '', labels: [], value}],
});

/**
 * The metrics of one server: `read()` gives every family as the native side counted it, with the
 * event-loop delay measured since metrics were first read or since the delay was last reset.
 */
export const createMetricsSource = (native) => {
  let delay;
  let stopped = false;

  const eventLoopDelay = () => {
    if (delay === undefined && !stopped) {
      delay = monitorEventLoopDelay({resolution: EVENT_LOOP_RESOLUTION_MS});
      delay.enable();
    }
    // Node samples the time between timer callbacks, so each sample includes the resolution.
    const seconds = (statistic) =>
      delay === undefined || delay.count == 0
        ? 0
        : Math.max(0, statistic(delay) - RESOLUTION_NANOSECONDS) /
          NANOSECONDS_PER_SECOND;
    return [
      gauge(
        'event_loop_delay_mean_seconds',
        'Mean delay of the JS thread event loop since the last scrape.',
        seconds((histogram) => histogram.mean),
      ),
      gauge(
        'event_loop_delay_p99_seconds',
        '99th percentile of the JS thread event loop delay since the last scrape.',
        seconds((histogram) => histogram.percentile(99)),
      ),
      gauge(
        'event_loop_delay_max_seconds',
        'Longest delay of the JS thread event loop since the last scrape.',
        seconds((histogram) => histogram.max),
      ),
    ];
  };

  return {
    read: () => [...native.metrics(), ...eventLoopDelay()],
    resetEventLoopDelay: () => delay?.reset(),
    // Called by destroy(): the counters stay readable, the delay stops being measured.
    stop: () => {
      stopped = true;
      delay?.disable();
    },
  };
};

export const attachMetrics = (wsServer, source) =>
  sources.set(wsServer, source);

const keptInJs = (wsServer) => ({
  name: 'connections_kept_in_js_total',
  help: 'Connections kept in ws, on the JS plane, by reason.',
  kind: 'counter',
  series: Object.entries(getPlaneStats(wsServer).js.byReason).map(
    ([reason, count]) => ({
      suffix: '',
      labels: [{name: 'reason', value: reason}],
      value: count,
    }),
  ),
});

// Every family of `wsServer`: what the relay counted, then what JS counted.
const readerOf = (wsServer) => {
  const source = sources.get(wsServer);
  if (source === undefined) {
    throw new TypeError('not a WsServer made by this package’s createWsServer');
  }
  return {
    read: () => [...source.read(), keptInJs(wsServer)],
    resetEventLoopDelay: source.resetEventLoopDelay,
  };
};

const checkPrefix = (prefix) => {
  if (typeof prefix != 'string' || !PREFIX.test(prefix)) {
    throw new TypeError(
      `the metrics prefix must be a valid Prometheus name start, not ${JSON.stringify(prefix)}`,
    );
  }
  return prefix;
};

// prom-client's metric JSON: counters and gauges use the family's own name for their values,
// which its OpenMetrics output relies on to suffix counters; histogram values name their series.
const toPromClient = (family, prefix) => {
  const name = prefix + family.name;
  return {
    name,
    help: family.help,
    type: family.kind,
    aggregator: 'sum',
    values: family.series.map(({suffix, labels, value}) => ({
      ...(suffix == '' ? {} : {metricName: name + suffix}),
      labels: Object.fromEntries(
        labels.map((label) => [label.name, label.value]),
      ),
      value,
    })),
  };
};

/**
 * Every metric of `wsServer` as it stands now, in prom-client's JSON format
 * (`[{name, help, type, values: [{labels, value}]}]`), names starting with `prefix`.
 */
export const getMetrics = (wsServer, {prefix = DEFAULT_PREFIX} = {}) => {
  checkPrefix(prefix);
  return readerOf(wsServer)
    .read()
    .map((family) => toPromClient(family, prefix));
};

/**
 * Registers every metric of `wsServer` in a prom-client `registry`, read afresh at each scrape;
 * returns a function that unregisters them. One scrape reads the relay once for all of them.
 */
export const registerMetrics = (
  wsServer,
  registry,
  {prefix = DEFAULT_PREFIX} = {},
) => {
  checkPrefix(prefix);
  const source = readerOf(wsServer);
  if (typeof registry?.registerMetric != 'function') {
    throw new TypeError('registerMetrics needs a prom-client Registry');
  }
  // The registry asks each metric in turn, synchronously, within one scrape: the first reads the
  // relay, the others share that reading, and the event-loop delay starts a new window after it.
  let scrape;
  const read = () => {
    if (scrape === undefined) {
      scrape = new Map(
        source
          .read()
          .map((family) => [family.name, toPromClient(family, prefix)]),
      );
      queueMicrotask(() => {
        scrape = undefined;
        source.resetEventLoopDelay();
      });
    }
    return scrape;
  };
  const names = source.read().map((family) => {
    const name = prefix + family.name;
    const metric = {
      name,
      help: family.help,
      type: family.kind,
      aggregator: 'sum',
      // An OpenMetrics registry renames counters (dropping `_total`) and reads the name back.
      get: () => ({...read().get(family.name), name: metric.name}),
      // The relay's counters only go up: resetting the registry leaves them as they are.
      reset: () => {},
    };
    registry.registerMetric(metric);
    return name;
  });
  return () => {
    for (const name of names) {
      registry.removeSingleMetric(name);
    }
  };
};
