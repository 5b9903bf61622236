// `nativeUpgrade`: the native plane answers the upgrades ws would accept as they are, and ws
// answers every other one as before. What a client sees must not tell the two apart.

import assert from 'node:assert/strict';
import {randomBytes} from 'node:crypto';
import {once} from 'node:events';
import https from 'node:https';
import test from 'node:test';
import {WebSocket, WebSocketServer} from 'ws';
import {
  TEST_TIMEOUT_MS,
  closeOf,
  defer,
  openClient,
  waitFor,
  waitForEqual,
  withTimeout,
} from '../support/harness.js';
import {closeClients, getPlaneStats} from '../../index.js';
import {
  OPCODES,
  clientFrame,
  createWsServer,
  exchangeEach,
  openTcp,
  openWs,
  refusedUpgrades,
  selfSignedCertificate,
  startServing,
} from './support/native.js';

const options = {timeout: TEST_TIMEOUT_MS};
const certificate = selfSignedCertificate();

// How many connections ws emitted, and how many are open on the native plane.
const assertPlaces = (server, {connections, native}) => {
  assert.equal(server.seen.connections, connections);
  assert.deepEqual(getPlaneStats(server.wsServer).native, {
    opened: native,
    open: native,
  });
};

test(
  'the plane answers the upgrades: clients sync, and ws makes no WebSocket for them',
  options,
  async (t) => {
    const server = await startServing(t, {
      serverOptions: {perMessageDeflate: true},
    });
    const native1 = await openClient(t, server.url('p'), {
      webSocket: new WebSocket(server.url('p'), {perMessageDeflate: false}),
    });
    const native2 = await openClient(t, server.url('p'), {
      webSocket: new WebSocket(server.url('p'), {perMessageDeflate: false}),
    });
    // Offering permessage-deflate to a server that accepts it: only ws negotiates it.
    const deflate = await openClient(t, server.url('p'));
    assert.equal(deflate.webSocket.extensions, 'permessage-deflate');

    native1.store.setCell('t', 'native1', 'c', 1);
    native2.store.setCell('t', 'native2', 'c', 2);
    deflate.store.setCell('t', 'deflate', 'c', 3);
    const all = {t: {native1: {c: 1}, native2: {c: 2}, deflate: {c: 3}}};
    for (const client of [native1, native2, deflate]) {
      await waitForEqual(() => client.store.getTables(), all);
    }
    assert.equal(server.wsServer.getClientIds('p').length, 3);
    assert.deepEqual(
      {
        connections: server.seen.connections,
        clients: server.webSocketServer.clients.size,
      },
      {connections: 1, clients: 1},
    );
    assert.deepEqual(getPlaneStats(server.wsServer), {
      native: {opened: 2, open: 2},
      js: {opened: 1, open: 1, byReason: {deflate: 1}},
    });
    assert.deepEqual(server.errors, []);
  },
);

test(
  'its 101 is byte for byte the one ws writes, with what a headers listener adds',
  options,
  async (t) => {
    const key = randomBytes(16).toString('base64');
    const protocols = {'Sec-WebSocket-Protocol': 'chat, tinybase'};
    const heads = [];
    for (const upgrade of [false, true]) {
      const server = await startServing(t, {upgrade});
      server.webSocketServer.on('headers', (headers) =>
        headers.push('X-Served-By: test'),
      );
      const client = await openTcp(t, server.port, 'p', {
        key,
        headers: protocols,
      });
      await waitFor(() => client.head, 'the 101 response');
      heads.push(client.head);
      assert.equal(server.seen.connections, upgrade ? 0 : 1);
    }
    assert.equal(heads[1], heads[0]);
    assert.match(heads[1], /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    // As ws without handleProtocols: the first subprotocol offered.
    assert.match(heads[1], /\r\nSec-WebSocket-Protocol: chat\r\n/);
    assert.match(heads[1], /\r\nX-Served-By: test$/);
  },
);

test(
  'a request ws refuses is refused by ws, as without the option',
  options,
  async (t) => {
    const requests = refusedUpgrades();
    const answers = [];
    for (const upgrade of [false, true]) {
      const server = await startServing(t, {
        upgrade,
        serverOptions: {path: '/p'},
      });
      answers.push(await exchangeEach(t, server.port, requests));
      assert.deepEqual(server.wsServer.getPathIds(), []);
    }
    assert.deepEqual(answers[1], answers[0]);
    for (const answer of Object.values(answers[1])) {
      assert.match(answer, /^HTTP\/1\.1 400 Bad Request\r\n/);
    }
  },
);

test(
  'a multiplexed client is given the tinybase subprotocol by the plane',
  options,
  async (t) => {
    const server = await startServing(t);
    const channel = await openClient(t, server.url('shop'), {
      channelId: 'pets',
    });
    assert.equal(channel.webSocket.protocol, 'tinybase');
    const legacy = await openClient(t, server.url('shop/pets'));
    channel.store.setCell('pets', 'fido', 'species', 'dog');
    await waitForEqual(() => legacy.store.getTables(), {
      pets: {fido: {species: 'dog'}},
    });
    assertPlaces(server, {connections: 0, native: 2});
  },
);

test(
  'with verifyClient ws answers, and the connection is taken over after it',
  options,
  async (t) => {
    const verified = [];
    const server = await startServing(t, {
      serverOptions: {
        verifyClient: ({req}) => verified.push(req.url) > 0,
      },
    });
    await openClient(t, server.url('p'));
    assert.deepEqual(verified, ['/p']);
    assertPlaces(server, {connections: 1, native: 1});
  },
);

test(
  'authorize is asked with the upgrade request, and a denied client is closed, also with listen',
  options,
  async (t) => {
    // With listen the plane hands every upgrade to the server, as authorize reads the request.
    for (const listen of [false, true]) {
      const asked = [];
      const server = await startServing(t, {
        listen,
        nativeOptions: {
          authorize: ({request, pathId, clientId}) => {
            asked.push({
              url: request.url,
              key: request.headers['sec-websocket-key'],
              remoteAddress: request.socket.remoteAddress,
              pathId,
              clientId,
            });
            return request.url.endsWith('?let=in') ? 'write' : false;
          },
        },
      });
      const allowed = await openWs(t, server.url('p?let=in'));
      await waitFor(() => server.wsServer.getClientIds('p').length == 1);
      const denied = await openWs(t, server.url('p?let=out'));
      assert.deepEqual(await withTimeout(denied.closed, 'the denied close'), {
        code: 1008,
        reason: 'access denied',
      });
      assert.deepEqual(asked, [
        {
          url: '/p?let=in',
          key: allowed.key,
          remoteAddress: '127.0.0.1',
          pathId: 'p',
          clientId: allowed.key,
        },
        {
          url: '/p?let=out',
          key: denied.key,
          remoteAddress: '127.0.0.1',
          pathId: 'p',
          clientId: denied.key,
        },
      ]);
      assert.deepEqual(server.wsServer.getClientIds('p'), [allowed.key]);
      assert.equal(server.seen.connections, 0);
      assert.deepEqual(getPlaneStats(server.wsServer).native, {
        opened: 2,
        open: 1,
      });
    }
  },
);

test(
  'a TLS upgrade is left to ws and served in JS',
  {...options, skip: certificate ? false : 'openssl is not available'},
  async (t) => {
    const httpsServer = https.createServer(certificate);
    httpsServer.listen(0, '127.0.0.1');
    await withTimeout(once(httpsServer, 'listening'), 'https listening');
    defer(t, () => new Promise((resolve) => httpsServer.close(resolve)));
    const server = await startServing(t, {server: httpsServer});
    const url = `wss://127.0.0.1:${server.port}/p`;
    await openClient(t, url, {
      webSocket: new WebSocket(url, {ca: certificate.cert}),
    });
    assert.equal(server.seen.connections, 1);
    assert.deepEqual(getPlaneStats(server.wsServer).js.byReason, {tls: 1});
  },
);

test(
  'a frame ws would refuse closes its sender with ws status and is reported as ws reports it',
  options,
  async (t) => {
    const server = await startServing(t);
    const client = await openTcp(t, server.port, 'p', {
      after: [clientFrame(OPCODES.text, Buffer.from([0xc3, 0x28]))],
    });
    await withTimeout(client.ended, 'the socket to end');
    const error = await waitFor(() => server.errors[0], 'the error reported');
    assert.equal(error.code, 'WS_ERR_INVALID_UTF8');
    assert.equal(error.constructor, Error);
  },
);

test(
  'destroy() closes the clients the plane answered, as ws closes its own, and gives the upgrades back',
  options,
  async (t) => {
    const server = await startServing(t);
    const httpServer = server.webSocketServer._server;
    const client = await openWs(t, server.url('p'));
    assert.equal(httpServer.listenerCount('upgrade'), 1);
    await withTimeout(server.wsServer.destroy(), 'destroy()');
    assert.deepEqual(await client.closed, {code: 1005, reason: ''});
    assert.equal(httpServer.listenerCount('upgrade'), 0);
    assert.deepEqual(getPlaneStats(server.wsServer).native, {
      opened: 1,
      open: 0,
    });
  },
);

test(
  'closeClients closes every client with the code and reason given, on either plane',
  options,
  async (t) => {
    const server = await startServing(t, {
      serverOptions: {perMessageDeflate: true},
    });
    const native = new WebSocket(server.url('p'), {perMessageDeflate: false});
    const js = new WebSocket(server.url('p'));
    const closes = [native, js].map((webSocket) => {
      webSocket.on('error', () => {});
      defer(t, () => webSocket.terminate());
      return closeOf(webSocket);
    });
    await Promise.all(
      [native, js].map((webSocket) =>
        withTimeout(once(webSocket, 'open'), 'a client to open'),
      ),
    );
    await waitFor(() => server.wsServer.getClientIds('p').length == 2);
    await withTimeout(
      closeClients(server.wsServer, 4000, 'moving'),
      'closeClients',
    );
    assert.deepEqual(await Promise.all(closes), [
      {code: 4000, reason: 'moving'},
      {code: 4000, reason: 'moving'},
    ]);
    await assert.rejects(closeClients({}), TypeError);
  },
);

test(
  'closeClients refuses, as ws does, a reason too long or a code that may not be sent',
  options,
  async (t) => {
    const server = await startServing(t);
    const client = await openWs(t, server.url('p'));
    await waitFor(() => server.wsServer.getClientIds('p').length == 1);
    await assert.rejects(
      closeClients(server.wsServer, 4000, 'x'.repeat(124)),
      RangeError,
    );
    await assert.rejects(closeClients(server.wsServer, 1005), TypeError);
    await assert.rejects(closeClients(server.wsServer, '4000'), TypeError);
    await withTimeout(
      closeClients(server.wsServer, 4001, 'ok'),
      'closeClients',
    );
    assert.deepEqual(await client.closed, {code: 4001, reason: 'ok'});
  },
);

test('nativeUpgrade needs a WebSocketServer with a server of its own', () => {
  const webSocketServer = new WebSocketServer({noServer: true});
  const noArguments = [undefined, undefined, undefined, undefined];
  assert.throws(
    () =>
      createWsServer(webSocketServer, ...noArguments, {nativeUpgrade: true}),
    {name: 'TypeError', message: /nativeUpgrade/},
  );
});
