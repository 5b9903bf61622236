// The takeover is real: a plain connection's traffic never reaches Node's event loop on the
// server side once the native plane has it, while connections that must stay in JS (TLS,
// permessage-deflate, sockets user code instrumented first) relay to and from native ones through
// the same server.

import assert from 'node:assert/strict';
import test from 'node:test';
import {WebSocket} from 'ws';
import {TEST_TIMEOUT_MS, waitFor, waitForEqual} from '../support/harness.js';
import {
  openTinyBase,
  selfSignedCertificate,
  startNative,
} from './support/native.js';

const options = {timeout: TEST_TIMEOUT_MS};

// A socket was taken over when Node let go of it while its WebSocket still says it is open. Node
// releases it in a setImmediate after the connection event, so this is only meaningful once the
// client is open and synced.
const isNative = (connection) =>
  connection.webSocket.readyState === WebSocket.OPEN &&
  connection.request.socket.destroyed;

const certificate = selfSignedCertificate();

test(
  'native clients relay with no data or message events in Node, beside TLS and deflate clients in JS',
  {...options, skip: certificate ? false : 'openssl is not available'},
  async (t) => {
    const server = await startNative(t, {
      perMessageDeflate: true,
      tls: certificate,
    });
    const path = 'mixed';
    const clients = {
      native1: await openTinyBase(t, server.url(path)),
      native2: await openTinyBase(t, server.url(path)),
      // ws clients offer permessage-deflate by default, and this server accepts it.
      deflate: await openTinyBase(t, server.url(path), {
        options: {perMessageDeflate: true},
      }),
      tls: await openTinyBase(t, server.tlsUrl(path), {
        options: {ca: certificate?.cert},
      }),
    };
    const sides = {};
    for (const [name, client] of Object.entries(clients)) {
      sides[name] = await server.connection(client.key);
    }
    assert.equal(clients.deflate.webSocket.extensions, 'permessage-deflate');
    assert.deepEqual(
      Object.fromEntries(
        Object.entries(sides).map(([name, side]) => [name, isNative(side)]),
      ),
      {native1: true, native2: true, deflate: false, tls: false},
    );

    // Every client writes a row; every client must end with all four, so each native client
    // receives from both JS-plane clients and each JS-plane client from both native ones.
    const before = Object.fromEntries(
      Object.entries(sides).map(([name, side]) => [
        name,
        {data: side.data, messages: side.messages},
      ]),
    );
    const expected = {t: {}};
    for (const [name, client] of Object.entries(clients)) {
      client.store.setCell('t', name, 'c', name);
      expected.t[name] = {c: name};
    }
    for (const [name, client] of Object.entries(clients)) {
      await waitForEqual(() => client.store.getTables(), expected, name);
    }
    const during = Object.fromEntries(
      Object.entries(sides).map(([name, side]) => [
        name,
        {
          data: side.data - before[name].data,
          messages: side.messages - before[name].messages,
        },
      ]),
    );

    // Taken over: not a single byte or message surfaced in JS for them, ever.
    for (const name of ['native1', 'native2']) {
      assert.deepEqual(
        {data: sides[name].data, messages: sides[name].messages},
        {data: 0, messages: 0},
        name,
      );
    }
    // The control: the same counters do see the JS-plane clients' traffic during the relay.
    for (const name of ['deflate', 'tls']) {
      assert.ok(during[name].data > 0, `${name}: ${JSON.stringify(during)}`);
      assert.ok(
        during[name].messages > 0,
        `${name}: ${JSON.stringify(during)}`,
      );
    }
    assert.deepEqual(server.wsServer.getStats(), {paths: 1, clients: 4});
    assert.deepEqual(server.errors, []);
  },
);

test(
  'a socket instrumented by a connection listener added before createWsServer stays in JS and relays',
  options,
  async (t) => {
    // startNative adds its own listener after createWsServer; this one must run before it, which a
    // prepend achieves on a server that already exists.
    const server = await startNative(t);
    const seen = [];
    server.webSocketServer.prependListener(
      'connection',
      (webSocket, request) => {
        // Only the client that asks for it (the query is not part of the path id).
        if (request.url.endsWith('?js')) {
          webSocket.on('message', (data) => seen.push(data.toString()));
        }
      },
    );
    const instrumented = await openTinyBase(t, server.url('instrumented?js'));
    const plain = await openTinyBase(t, server.url('instrumented'));
    const [instrumentedSide, plainSide] = [
      await server.connection(instrumented.key),
      await server.connection(plain.key),
    ];
    instrumented.store.setValue('from', 'instrumented');
    plain.store.setValue('to', 'plain');
    const expected = {from: 'instrumented', to: 'plain'};
    await waitForEqual(() => instrumented.store.getValues(), expected, 'js');
    await waitForEqual(() => plain.store.getValues(), expected, 'native');
    assert.equal(isNative(instrumentedSide), false);
    assert.equal(isNative(plainSide), true);
    assert.ok(instrumentedSide.data > 0);
    assert.equal(plainSide.data, 0);
    // The user's own listener got what its client sent.
    assert.ok(seen.length > 0);
    await waitFor(
      () => server.wsServer.getStats().clients === 2,
      'two clients',
    );
  },
);
