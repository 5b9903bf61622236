// createWsServerSimple, TinyBase's relay-only server: the same cases run against TinyBase's own
// (TB_WS_SERVER=reference) and this package's, on both planes (a socket that negotiates
// permessage-deflate stays in JS; one that does not is taken over natively).

import assert from 'node:assert/strict';
import {once} from 'node:events';
import test from 'node:test';
import {WebSocket, WebSocketServer} from 'ws';
import {
  TEST_TIMEOUT_MS,
  closeOf,
  defer,
  openClient,
  plain,
  waitForEqual,
  withTimeout,
} from './support/harness.js';
import {
  createWsServerSimple,
  name as implementation,
} from './support/implementation.js';

const options = {timeout: TEST_TIMEOUT_MS};

// The client options that put the server's side of a connection on each plane.
const PLANES = {
  native: {perMessageDeflate: false},
  js: {perMessageDeflate: true},
};

const startSimple = async (t, plane) => {
  const webSocketServer = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    perMessageDeflate: true,
  });
  defer(
    t,
    () =>
      new Promise((resolve) => {
        try {
          WebSocketServer.prototype.close.call(webSocketServer, resolve);
        } catch {
          resolve();
        }
      }),
  );
  await withTimeout(once(webSocketServer, 'listening'), 'listening');
  const server = createWsServerSimple(webSocketServer);
  defer(t, () =>
    withTimeout(
      server.destroy().catch(() => {}),
      'destroy in cleanup',
    ),
  );
  if (implementation == 'native') {
    const {getConnectionPlane} = await import('../index.js');
    webSocketServer.on('connection', (webSocket) =>
      assert.equal(getConnectionPlane(webSocket)?.plane, plane),
    );
  }
  const {port} = webSocketServer.address();
  const url = (path) => `ws://127.0.0.1:${port}/${path}`;
  const socket = (path, protocols = []) =>
    new WebSocket(url(path), protocols, PLANES[plane]);
  const client = (path) => openClient(t, url(path), {webSocket: socket(path)});
  return {webSocketServer, server, url, socket, client};
};

for (const plane of Object.keys(PLANES)) {
  test(
    `${plane} plane: clients of one path sync through the simple server, and paths stay apart`,
    options,
    async (t) => {
      const {client} = await startSimple(t, plane);
      const first = await client('notes');
      const second = await client('notes');
      const elsewhere = await client('other');
      first.store.setCell('t', 'r', 'from', 'first');
      second.store.setValue('second', true);
      elsewhere.store.setValue('elsewhere', 1);
      const tables = {t: {r: {from: 'first'}}};
      for (const {store} of [first, second]) {
        await waitForEqual(() => store.getTables(), tables, 'tables');
        await waitForEqual(() => store.getValues(), {second: true}, 'values');
      }
      // Joining later, a client gets the path's data from its peers.
      const late = await client('notes');
      await waitForEqual(() => late.store.getTables(), tables, 'late tables');
      assert.deepEqual(plain(elsewhere.store.getTables()), {});
      assert.deepEqual(plain(elsewhere.store.getValues()), {elsewhere: 1});
    },
  );

  test(
    `${plane} plane: channels of a multiplexed socket sync with the clients of their paths`,
    options,
    async (t) => {
      const {client, socket} = await startSimple(t, plane);
      const shared = socket('base', ['tinybase']);
      const channels = {};
      for (const channelId of ['a', 'b']) {
        channels[channelId] = await openClient(t, undefined, {
          webSocket: shared,
          channelId,
        });
      }
      const onA = await client('base/a');
      const onB = await client('base/b');
      channels.a.store.setValue('a', 'channel');
      onB.store.setValue('b', 'legacy');
      await waitForEqual(() => onA.store.getValues(), {a: 'channel'}, 'on a');
      await waitForEqual(
        () => channels.b.store.getValues(),
        {b: 'legacy'},
        'channel b',
      );
      assert.deepEqual(plain(onB.store.getValues()), {b: 'legacy'});
      assert.deepEqual(plain(channels.a.store.getValues()), {a: 'channel'});
    },
  );

  test(
    `${plane} plane: an invalid payload closes only its sender`,
    options,
    async (t) => {
      const {client, socket} = await startSimple(t, plane);
      const first = await client('p');
      const raw = socket('p');
      defer(t, () => raw.terminate());
      const closed = closeOf(raw);
      await withTimeout(once(raw, 'open'), 'raw open');
      raw.send('no newline here');
      assert.deepEqual(await withTimeout(closed, 'raw close'), {
        code: 1007,
        reason: 'tinybase:14',
      });
      const second = await client('p');
      first.store.setValue('still', 'relayed');
      await waitForEqual(
        () => second.store.getValues(),
        {still: 'relayed'},
        'relay after the close',
      );
    },
  );

  test(
    `${plane} plane: the simple server has TinyBase's two methods, and destroy closes everything once`,
    options,
    async (t) => {
      const {webSocketServer, server, client} = await startSimple(t, plane);
      assert.ok(Object.isFrozen(server));
      assert.deepEqual(Object.keys(server).sort(), [
        'destroy',
        'getWebSocketServer',
      ]);
      assert.equal(server.getWebSocketServer(), webSocketServer);
      const connected = await client('p');
      const serverClosed = once(webSocketServer, 'close');
      const destroying = server.destroy();
      assert.equal(server.destroy(), destroying);
      await withTimeout(destroying, 'destroy');
      await withTimeout(serverClosed, 'the WebSocketServer to close');
      const {code} = await withTimeout(connected.closed, 'client close');
      assert.equal(code, 1005);
    },
  );
}
