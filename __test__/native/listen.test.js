// `listen`: the package owns the listening socket and the native plane accepts on it. The upgrades
// it can answer never reach JS; everything else reaches the WebSocketServer's HTTP server as if
// that server had accepted it. What a client sees must not tell it from ws listening itself.

import assert from 'node:assert/strict';
import {randomBytes} from 'node:crypto';
import {once} from 'node:events';
import {createServer} from 'node:http';
import net from 'node:net';
import test from 'node:test';
import {WebSocket, WebSocketServer} from 'ws';
import {
  TEST_TIMEOUT_MS,
  defer,
  openClient,
  waitFor,
  waitForEqual,
  withTimeout,
} from '../support/harness.js';
import {closeClients, getListenAddress, getPlaneStats} from '../../index.js';
import {
  createWsServer,
  exchangeEach,
  openTcp,
  openWs,
  refusedUpgrades,
  startServing,
} from './support/native.js';

const options = {timeout: TEST_TIMEOUT_MS};

// A WebSocketServer listening on a port of its own, for what ws answers itself.
const startWs = async (t, serverOptions) => {
  const webSocketServer = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    perMessageDeflate: false,
    ...serverOptions,
  });
  defer(
    t,
    () => new Promise((resolve) => webSocketServer.close(() => resolve())),
  );
  await withTimeout(once(webSocketServer, 'listening'), 'listening');
  return webSocketServer.address().port;
};

test(
  'the plane accepts and answers the upgrades: clients sync, and no upgrade reaches JS',
  options,
  async (t) => {
    const server = await startServing(t, {listen: true});
    const upgrades = [];
    server.httpServer.on('upgrade', (request) => upgrades.push(request.url));
    const address = getListenAddress(server.wsServer);
    assert.deepEqual(address, {
      address: '127.0.0.1',
      family: 'IPv4',
      port: address.port,
    });
    assert.ok(Object.isFrozen(address));
    const clients = [];
    for (const name of ['a', 'b', 'c']) {
      clients.push(await openClient(t, server.url('p')));
      clients.at(-1).store.setCell('t', name, 'c', name);
    }
    const all = {t: {a: {c: 'a'}, b: {c: 'b'}, c: {c: 'c'}}};
    for (const client of clients) {
      await waitForEqual(() => client.store.getTables(), all);
    }
    assert.equal(server.wsServer.getClientIds('p').length, 3);
    assert.deepEqual(upgrades, []);
    assert.equal(server.seen.connections, 0);
    assert.deepEqual(getPlaneStats(server.wsServer), {
      native: {opened: 3, open: 3},
      js: {opened: 0, open: 0, byReason: {}},
    });
    assert.deepEqual(server.errors, []);
  },
);

test(
  'a plain HTTP request reaches the HTTP server, on the same port',
  options,
  async (t) => {
    const server = await startServing(t, {listen: true});
    const response = await withTimeout(
      fetch(`http://127.0.0.1:${server.port}/health?x=1`),
      'the HTTP answer',
    );
    assert.equal(response.status, 200);
    assert.equal(await response.text(), 'served /health?x=1');
  },
);

test('its 101 is byte for byte the one ws writes', options, async (t) => {
  const key = randomBytes(16).toString('base64');
  const headers = {'Sec-WebSocket-Protocol': 'chat, tinybase'};
  const ws = await openTcp(t, await startWs(t), 'p', {key, headers});
  const server = await startServing(t, {listen: true});
  const plane = await openTcp(t, server.port, 'p', {key, headers});
  assert.equal(plane.head, ws.head);
  assert.match(plane.head, /\r\nSec-WebSocket-Protocol: chat$/);
  assert.equal(server.seen.connections, 0);
});

test(
  'a request ws refuses is refused by ws, as when ws listens itself',
  options,
  async (t) => {
    const requests = refusedUpgrades();
    const byWs = await exchangeEach(
      t,
      await startWs(t, {path: '/p'}),
      requests,
    );
    const server = await startServing(t, {
      listen: true,
      serverOptions: {path: '/p'},
    });
    assert.deepEqual(await exchangeEach(t, server.port, requests), byWs);
    for (const answer of Object.values(byWs)) {
      assert.match(answer, /^HTTP\/1\.1 400 Bad Request\r\n/);
    }
    assert.deepEqual(server.wsServer.getPathIds(), []);
  },
);

test(
  'upgrades the WebSocketServer must judge itself reach it, and are served too',
  options,
  async (t) => {
    const verified = [];
    const deflating = await startServing(t, {
      listen: true,
      serverOptions: {perMessageDeflate: true},
    });
    const deflate = await openClient(t, deflating.url('p'));
    assert.equal(deflate.webSocket.extensions, 'permessage-deflate');
    const plain = await openClient(t, deflating.url('p'), {
      webSocket: new WebSocket(deflating.url('p'), {perMessageDeflate: false}),
    });
    deflate.store.setCell('t', 'r', 'c', 1);
    await waitForEqual(() => plain.store.getTables(), {t: {r: {c: 1}}});
    assert.equal(deflating.seen.connections, 1);
    assert.deepEqual(getPlaneStats(deflating.wsServer), {
      native: {opened: 1, open: 1},
      js: {opened: 1, open: 1, byReason: {deflate: 1}},
    });

    const verifying = await startServing(t, {
      listen: true,
      serverOptions: {verifyClient: ({req}) => verified.push(req.url) > 0},
    });
    await openClient(t, verifying.url('p'));
    assert.deepEqual(verified, ['/p']);
    // ws answered it, and the connection was taken over after.
    assert.equal(verifying.seen.connections, 1);
    assert.deepEqual(getPlaneStats(verifying.wsServer).native.open, 1);
  },
);

test(
  'closeClients closes the clients the plane answered',
  options,
  async (t) => {
    const server = await startServing(t, {listen: true});
    const client = await openWs(t, server.url('p'));
    await waitFor(() => server.wsServer.getClientIds('p').length == 1);
    // A second call while the first is closing waits for the same close.
    await withTimeout(
      Promise.all([
        closeClients(server.wsServer, 4000, 'moving'),
        closeClients(server.wsServer, 4001, 'again'),
      ]),
      'closeClients',
    );
    assert.deepEqual(await client.closed, {code: 4000, reason: 'moving'});
    assert.deepEqual(getPlaneStats(server.wsServer).native, {
      opened: 1,
      open: 0,
    });
  },
);

test(
  'destroy() stops listening and closes the clients, as ws closes its own',
  options,
  async (t) => {
    const server = await startServing(t, {listen: true});
    const client = await openWs(t, server.url('p'));
    await waitFor(() => server.wsServer.getClientIds('p').length == 1);
    await withTimeout(server.wsServer.destroy(), 'destroy()');
    assert.deepEqual(await client.closed, {code: 1005, reason: ''});
    const socket = net.connect(server.port, '127.0.0.1');
    const [error] = await withTimeout(
      once(socket, 'error'),
      'the refused connect',
    );
    assert.equal(error.code, 'ECONNREFUSED');
    assert.deepEqual(getPlaneStats(server.wsServer).native, {
      opened: 1,
      open: 0,
    });
  },
);

test('listen refuses what it cannot listen for, and an address in use', async (t) => {
  const noArguments = [undefined, undefined, undefined, undefined];
  const listening = new WebSocketServer({host: '127.0.0.1', port: 0});
  defer(t, () => new Promise((resolve) => listening.close(() => resolve())));
  await once(listening, 'listening');
  const {port} = listening.address();
  const refusals = [
    [new WebSocketServer({noServer: true}), {port: 0}],
    [listening, {port: 0}],
    [new WebSocketServer({server: createServer()}), {port: -1}],
    [new WebSocketServer({server: createServer()}), {port: '80'}],
    [new WebSocketServer({server: createServer()}), {port: 0, host: 1}],
    [new WebSocketServer({server: createServer()}), {port: 0, backlog: 0}],
  ];
  for (const [webSocketServer, listen] of refusals) {
    assert.throws(
      () => createWsServer(webSocketServer, ...noArguments, {listen}),
      TypeError,
    );
  }
  const webSocketServer = new WebSocketServer({server: createServer()});
  assert.throws(
    () =>
      createWsServer(webSocketServer, ...noArguments, {
        listen: {port, host: '127.0.0.1'},
      }),
    {
      code: 'EADDRINUSE',
      syscall: 'listen',
      message: `listen EADDRINUSE: address already in use 127.0.0.1:${port}`,
    },
  );
  // Nothing of the failed server is left behind: another one listens for the same server.
  const wsServer = createWsServer(webSocketServer, ...noArguments, {
    listen: {port: 0, host: '127.0.0.1'},
  });
  await wsServer.destroy();
});
