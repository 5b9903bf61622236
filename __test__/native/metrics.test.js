// The relay's metrics: each counter moves when its event happens, on both planes, and a prom-client
// registry shows them all as valid Prometheus text beside Node's own process metrics.

import assert from 'node:assert/strict';
import {randomBytes} from 'node:crypto';
import test from 'node:test';
import parsePrometheusText from 'parse-prometheus-text-format';
import {Registry, collectDefaultMetrics} from 'prom-client';
import {getMetrics, registerMetrics} from '../../index.js';
import {TEST_TIMEOUT_MS, waitFor, withTimeout} from '../support/harness.js';
import {createMemoryPersister} from '../support/persisters.js';
import {
  hashesRequest,
  openTcp,
  openTinyBase,
  openWs,
  startNative,
} from './support/native.js';

const options = {timeout: TEST_TIMEOUT_MS};
const MAX_PAYLOAD = 16 * 1024 * 1024;
const PREFIX = 'tinybase_ws_';

// The sum of the series of `name` (prefix left off) whose labels include `labels`.
const metric = (wsServer, name, labels = {}) => {
  let sum = 0;
  for (const family of getMetrics(wsServer)) {
    for (const {
      metricName = family.name,
      labels: own,
      value,
    } of family.values) {
      if (
        metricName == PREFIX + name &&
        Object.entries(labels).every(([label, wanted]) => own[label] == wanted)
      ) {
        sum += value;
      }
    }
  }
  return sum;
};

const expectMetric = async (wsServer, name, labels, expected) => {
  let last;
  try {
    await waitFor(
      () => (last = metric(wsServer, name, labels)) === expected,
      `${name} ${JSON.stringify(labels)} to be ${expected}`,
    );
  } catch (error) {
    error.message += `; last seen ${last}`;
    throw error;
  }
};

const expectMetrics = async (wsServer, expectations) => {
  for (const [name, labels, expected] of expectations) {
    await expectMetric(wsServer, name, labels, expected);
  }
};

// JS-plane clients negotiate permessage-deflate, which keeps their socket in ws.
const clientOptions = (plane) => ({
  options: {perMessageDeflate: plane == 'js'},
});

for (const plane of ['native', 'js']) {
  const other = plane == 'native' ? 'js' : 'native';

  test(
    `counters follow connections, relaying, bad messages and a persisted path (${plane} plane)`,
    options,
    async (t) => {
      const storage = new Map();
      const server = await startNative(t, {
        perMessageDeflate: true,
        createPersisterForPath: (pathId) =>
          pathId == 'persisted'
            ? createMemoryPersister({pathId, storage})
            : undefined,
      });
      const {wsServer} = server;
      const open = (path) => openWs(t, server.url(path), clientOptions(plane));

      const sender = await open('relay');
      const receiver = await open('relay');
      await expectMetrics(wsServer, [
        ['connections_opened_total', {plane}, 2],
        ['connections_open', {plane}, 2],
        ['connections_opened_total', {plane: other}, 0],
        ['paths_started_total', {}, 1],
        ['paths_active', {}, 1],
      ]);

      const request = hashesRequest('one');
      sender.send(request);
      await waitFor(() => receiver.messages.length == 1, 'the relayed request');
      const relayed = receiver.messages[0];
      await expectMetrics(wsServer, [
        ['messages_received_total', {plane}, 1],
        ['received_bytes_total', {plane}, Buffer.byteLength(request)],
        ['messages_sent_total', {plane}, 1],
        ['sent_bytes_total', {plane}, Buffer.byteLength(relayed)],
        ['messages_sent_total', {plane: other}, 0],
      ]);

      receiver.send('not a sync message');
      assert.equal((await withTimeout(receiver.closed, 'close')).code, 1007);
      await expectMetrics(wsServer, [
        ['messages_dropped_total', {reason: 'invalid'}, 1],
        ['connections_closed_total', {plane, code: '1007'}, 1],
        ['connections_open', {plane}, 1],
      ]);

      sender.send(`\n${'x'.repeat(MAX_PAYLOAD)}`);
      assert.equal((await withTimeout(sender.closed, 'close')).code, 1013);
      await expectMetrics(wsServer, [
        ['messages_dropped_total', {reason: 'overflow'}, 1],
        ['connections_closed_total', {plane, code: '1013'}, 1],
        ['connections_open', {plane}, 0],
        ['messages_received_total', {plane}, 3],
        ['paths_stopped_total', {}, 1],
        ['paths_active', {}, 0],
        // Only paths with a persister time one.
        ['persister_start_seconds_count', {}, 0],
      ]);

      const client = await openTinyBase(
        t,
        server.url('persisted'),
        clientOptions(plane),
      );
      client.store.setCell('pets', 'fido', 'species', 'dog');
      await waitFor(
        () => JSON.stringify(storage.get('persisted') ?? '').includes('"dog"'),
        'the change to be saved',
      );
      await expectMetrics(wsServer, [
        ['persister_start_seconds_count', {}, 1],
        ['persister_start_seconds_bucket', {le: '+Inf'}, 1],
        ['paths_started_total', {}, 2],
        ['paths_active', {}, 1],
      ]);
      await client.synchronizer.destroy();
      client.webSocket.close();
      await expectMetrics(wsServer, [
        ['persister_stop_seconds_count', {}, 1],
        ['paths_stopped_total', {}, 2],
        ['paths_active', {}, 0],
        ['connections_open', {plane}, 0],
        ['connections_opened_total', {plane}, 3],
        [
          'connections_kept_in_js_total',
          {reason: 'deflate'},
          plane == 'js' ? 3 : 0,
        ],
        ['js_queue_events', {}, 0],
        ['held_back_sockets', {}, 0],
      ]);
      assert.equal(metric(wsServer, 'slow_consumer_closes_total'), 0);
      assert.equal(metric(wsServer, 'heartbeat_drops_total'), 0);
    },
  );

  test(
    `a client that stops reading is closed as a slow consumer (${plane} plane)`,
    options,
    async (t) => {
      const server = await startNative(t, {perMessageDeflate: true});
      const sender = await openWs(t, server.url('slow'));
      // Paused, it reads nothing more; dropped at the end, as its close cannot get through.
      let receiver;
      if (plane == 'native') {
        const {socket} = await openTcp(t, server.port, 'slow');
        receiver = {pause: () => socket.pause(), drop: () => socket.destroy()};
      } else {
        const {webSocket} = await openWs(
          t,
          server.url('slow'),
          clientOptions(plane),
        );
        receiver = {
          pause: () => webSocket.pause(),
          drop: () => webSocket.terminate(),
        };
      }
      await waitFor(
        () => server.wsServer.getClientIds('slow').length == 2,
        'both clients on the path',
      );
      receiver.pause();

      // Random, so permessage-deflate cannot shrink it; 40 MiB in all, more than the 16 MiB
      // backlog and whatever the kernel's buffers hold.
      const request = hashesRequest(randomBytes(786_432).toString('base64'));
      for (let sent = 0; sent < 40; sent++) {
        sender.send(request);
      }
      await expectMetrics(server.wsServer, [
        ['slow_consumer_closes_total', {plane}, 1],
        ['slow_consumer_closes_total', {plane: other}, 0],
        ['messages_dropped_total', {reason: 'overflow'}, 1],
      ]);
      receiver.drop();
    },
  );
}

test(
  'a native peer that stops answering pings counts as a heartbeat drop',
  options,
  async (t) => {
    const server = await startNative(t, {
      nativeOptions: {heartbeatSeconds: 0.2, heartbeatMisses: 1},
    });
    const silent = await openTcp(t, server.port, 'silent');
    await withTimeout(silent.ended, 'the silent peer to be dropped');
    await expectMetrics(server.wsServer, [
      ['heartbeat_drops_total', {}, 1],
      ['connections_closed_total', {plane: 'native', code: '1006'}, 1],
      ['connections_open', {}, 0],
    ]);
  },
);

// Strictly checked: parse-prometheus-text-format accepts some malformed lines, so every value,
// name and histogram is checked on top of what it parsed.
// The parser writes NaN as it likes ('Nan').
const SPECIAL_VALUE = /^(nan|[+-]inf)$/i;
const parseStrictly = (text) => {
  const families = parsePrometheusText(text);
  const declared = text
    .split('\n')
    .filter((line) => line.startsWith('# TYPE '))
    .map((line) => line.split(' ')[2]);
  assert.equal(new Set(declared).size, declared.length, 'a family twice');
  assert.equal(families.length, declared.length);
  for (const family of families) {
    assert.match(family.name, /^[a-zA-Z_:][a-zA-Z0-9_:]*$/);
    assert.notEqual(family.type, 'UNTYPED', family.name);
    assert.notEqual(family.help, '', family.name);
    for (const sample of family.metrics) {
      // It gives a labelled histogram (Node's GC one) its buckets only.
      const numbers =
        family.type == 'HISTOGRAM'
          ? [
              ...Object.values(sample.buckets),
              ...(sample.count === undefined ? [] : [sample.count, sample.sum]),
            ]
          : [sample.value];
      for (const number of numbers) {
        assert.ok(
          SPECIAL_VALUE.test(number) || Number.isFinite(Number(number)),
          `${family.name} ${number}`,
        );
      }
    }
  }
  return new Map(families.map((family) => [family.name, family]));
};

test(
  'a prom-client registry shows every metric as valid Prometheus text beside process metrics',
  options,
  async (t) => {
    const server = await startNative(t, {perMessageDeflate: true});
    const registry = new Registry();
    collectDefaultMetrics({register: registry});
    const unregister = registerMetrics(server.wsServer, registry);
    await openWs(t, server.url('scraped'));
    await openWs(t, server.url('scraped'), clientOptions('js'));
    await expectMetric(server.wsServer, 'connections_open', {}, 2);

    const families = parseStrictly(await registry.metrics());
    const ours = getMetrics(server.wsServer);
    assert.ok(ours.length >= 20);
    for (const {name, type, values} of ours) {
      const parsed = families.get(name);
      assert.ok(parsed, `${name} is in the scrape`);
      assert.equal(parsed.type, type.toUpperCase());
      assert.equal(type == 'counter', name.endsWith('_total'), name);
      if (type == 'histogram') {
        assert.match(name, /_seconds$/);
        const [sample] = parsed.metrics;
        const counts = Object.values(sample.buckets).map(Number);
        assert.deepEqual(
          counts,
          [...counts].sort((a, b) => a - b),
          'cumulative',
        );
        assert.equal(sample.buckets['+Inf'], sample.count);
      } else {
        assert.equal(parsed.metrics.length, values.length, name);
      }
    }
    const opened = families
      .get(`${PREFIX}connections_opened_total`)
      .metrics.map(({labels, value}) => [labels.plane, Number(value)]);
    assert.deepEqual(opened, [
      ['native', 1],
      ['js', 1],
    ]);
    for (const name of [
      'process_cpu_seconds_total',
      'nodejs_heap_size_used_bytes',
    ]) {
      assert.ok(families.has(name), name);
    }

    // A second server in the same registry needs a prefix of its own.
    assert.throws(() => registerMetrics(server.wsServer, registry));
    const other = registerMetrics(server.wsServer, registry, {prefix: 'b_'});
    assert.ok(parseStrictly(await registry.metrics()).has('b_paths_active'));
    other();
    unregister();
    const left = parseStrictly(await registry.metrics());
    assert.ok(![...left.keys()].some((name) => name.startsWith(PREFIX)));
    assert.ok(left.has('process_cpu_seconds_total'));
  },
);

test(
  'an OpenMetrics registry names counters once, as prom-client does its own',
  options,
  async (t) => {
    const server = await startNative(t);
    const registry = new Registry(Registry.OPENMETRICS_CONTENT_TYPE);
    registerMetrics(server.wsServer, registry, {prefix: 'om_'});
    await openWs(t, server.url('open'));
    const text = await registry.metrics();
    assert.ok(text.endsWith('# EOF\n'));
    assert.ok(text.includes('# TYPE om_connections_opened counter\n'));
    assert.ok(text.includes('om_connections_opened_total{plane="native"} 1\n'));
    assert.ok(!text.includes('_total_total'));
  },
);

test(
  'metrics are asked of a server this package made, with a valid prefix',
  options,
  async (t) => {
    const server = await startNative(t);
    assert.throws(() => getMetrics({}), TypeError);
    assert.throws(() => registerMetrics(server.wsServer, {}), TypeError);
    for (const prefix of ['1a_', 'with space', 'dash-']) {
      assert.throws(() => getMetrics(server.wsServer, {prefix}), TypeError);
    }
    const unprefixed = getMetrics(server.wsServer, {prefix: ''});
    assert.ok(unprefixed.some(({name}) => name == 'paths_active'));
    // Still readable once destroyed, with the connections it closed.
    await server.wsServer.destroy();
    assert.ok(getMetrics(server.wsServer).length > 0);
  },
);
