// The cluster's counters, read from two servers of one cluster in this process.

import assert from 'node:assert/strict';
import {once} from 'node:events';
import test from 'node:test';
import {WebSocketServer} from 'ws';
import {createWsServer, getMetrics} from '../../index.js';
import {TEST_TIMEOUT_MS, defer, waitFor} from '../support/harness.js';
import {meet, openRaw, startRedis} from './support.js';

const PREFIX = 'tinybase_ws_';

// The sum of the series named `name` (prefix left off).
const metric = (wsServer, name) =>
  getMetrics(wsServer)
    .flatMap((family) =>
      family.values.map(({metricName = family.name, value}) => ({
        metricName,
        value,
      })),
    )
    .filter(({metricName}) => metricName == PREFIX + name)
    .reduce((sum, {value}) => sum + value, 0);

const startClusterServer = async (t, redis) => {
  const webSocketServer = new WebSocketServer({host: '127.0.0.1', port: 0});
  await once(webSocketServer, 'listening');
  const errors = [];
  const wsServer = createWsServer(
    webSocketServer,
    undefined,
    (error) => errors.push(error.message),
    1,
    undefined,
    {cluster: {redis: redis.url}},
  );
  defer(t, async () => {
    await wsServer.destroy();
  });
  const {port} = webSocketServer.address();
  return {wsServer, errors, url: (path) => `ws://127.0.0.1:${port}/${path}`};
};

test(
  'Redis traffic, lag and reconnects are counted per server',
  {timeout: TEST_TIMEOUT_MS},
  async (t) => {
    const redis = await startRedis(t);
    const a = await startClusterServer(t, redis);
    const b = await startClusterServer(t, redis);
    const raws = [
      await openRaw(t, a.url('p'), 'on a'),
      await openRaw(t, b.url('p'), 'on b'),
    ];
    await meet(raws);
    for (const server of [a, b]) {
      assert.ok(metric(server.wsServer, 'redis_published_total') >= 1);
      assert.ok(metric(server.wsServer, 'redis_received_total') >= 1);
      assert.ok(metric(server.wsServer, 'redis_lag_seconds_count') >= 1);
      assert.equal(metric(server.wsServer, 'redis_reconnects_total'), 0);
    }

    await redis.stop();
    await waitFor(
      () => a.errors.length && b.errors.length,
      'both servers to report the outage',
    );
    await redis.start();
    for (const server of [a, b]) {
      await waitFor(
        () => metric(server.wsServer, 'redis_reconnects_total') == 1,
        'a reconnect',
      );
      assert.equal(server.errors.length, 1, server.errors.join('; '));
      assert.match(server.errors[0], /^cluster: Redis is unreachable/);
    }
  },
);
