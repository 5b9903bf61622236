// File descriptor hygiene: every connection the native plane takes over costs the process two
// descriptors while it lives (Node's, until released, and the plane's duplicate) and none after.
// In a file of its own: node --test runs each file in its own process, so nothing else here opens
// or closes descriptors meanwhile.

import assert from 'node:assert/strict';
import {once} from 'node:events';
import test from 'node:test';
import {setTimeout as delay} from 'node:timers/promises';
import {WebSocket, WebSocketServer} from 'ws';
import {TEST_TIMEOUT_MS, waitFor, withTimeout} from '../support/harness.js';
import {createWsServer, hashesRequest, openFds} from './support/native.js';

const CYCLES = 500;
const CONCURRENT = 5;

// Waits until the count has stopped moving: closes finish on the plane's threads and in Node's
// loop a little after the close events the test waits for.
const settledFds = async () => {
  let last = openFds();
  let same = 0;
  await waitFor(() => {
    const now = openFds();
    same = now === last ? same + 1 : 0;
    last = now;
    return same >= 20;
  }, 'the fd count to settle');
  return last;
};

// One connection: open, prove it is relayed (a message to itself comes back), close.
const cycle = async (url) => {
  const webSocket = new WebSocket(url, {perMessageDeflate: false});
  const key = webSocket._req.getHeader('sec-websocket-key');
  webSocket.on('error', () => {});
  const closed = once(webSocket, 'close');
  await withTimeout(once(webSocket, 'open'), 'open');
  const echoed = once(webSocket, 'message');
  webSocket.send(hashesRequest('self', key));
  await withTimeout(echoed, 'the message to itself');
  webSocket.close();
  await withTimeout(closed, 'close');
};

test(
  `${CYCLES} connect/disconnect cycles leave the fd count where it was`,
  {timeout: TEST_TIMEOUT_MS * 3},
  async (t) => {
    const beforeServer = await settledFds();
    const webSocketServer = new WebSocketServer({host: '127.0.0.1', port: 0});
    await withTimeout(once(webSocketServer, 'listening'), 'listening');
    const wsServer = createWsServer(webSocketServer);
    t.after(() =>
      withTimeout(
        wsServer.destroy().catch(() => {}),
        'destroy',
      ),
    );
    const url = `ws://127.0.0.1:${webSocketServer.address().port}/fds`;

    // Whatever the first connections set up once (and keep) is part of the baseline.
    for (let index = 0; index < CONCURRENT; index++) {
      await cycle(url);
    }
    await waitFor(() => wsServer.getStats().clients === 0, 'warm-up to end');
    const baseline = await settledFds();

    let peak = baseline;
    const sample = setInterval(() => (peak = Math.max(peak, openFds())), 1);
    try {
      for (let round = 0; round < CYCLES / CONCURRENT; round++) {
        await Promise.all(Array.from({length: CONCURRENT}, () => cycle(url)));
      }
    } finally {
      clearInterval(sample);
    }
    await waitFor(
      () => wsServer.getStats().clients === 0,
      'every client to leave',
    );
    await waitFor(
      () => openFds() <= baseline,
      `the fd count back at ${baseline}`,
    );
    assert.equal(await settledFds(), baseline);
    // The sampling shows the connections did cost descriptors while they were open.
    assert.ok(peak > baseline, `peak ${peak}, baseline ${baseline}`);

    // And destroying the server gives back what it took: its runtime and the listening socket.
    await withTimeout(wsServer.destroy(), 'destroy');
    await delay(0);
    await waitFor(
      () => openFds() <= beforeServer,
      `the fd count back at ${beforeServer} after destroy`,
    );
    assert.equal(await settledFds(), beforeServer);
  },
);
