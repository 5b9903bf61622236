// An app's WebSocketServer may come from a copy of ws other than this package's own (a monorepo,
// `npm link`, a framework that bundles ws): its connections are taken over all the same, judged by
// how ws 8 builds a WebSocket, while sockets user code instrumented first still stay in JS.

import assert from 'node:assert/strict';
import {cpSync, mkdtempSync, realpathSync, rmSync} from 'node:fs';
import {createRequire} from 'node:module';
import {tmpdir} from 'node:os';
import {dirname, join} from 'node:path';
import test from 'node:test';
import {pathToFileURL} from 'node:url';
import {WebSocket, WebSocketServer} from 'ws';
import {
  TEST_TIMEOUT_MS,
  defer,
  waitFor,
  waitForEqual,
} from '../support/harness.js';
import {openTinyBase, startNative} from './support/native.js';

const options = {timeout: TEST_TIMEOUT_MS};

// A second physical copy of the ws package this package depends on, in a node_modules of its own.
const copyOfWs = async (t) => {
  const packageDir = dirname(
    createRequire(import.meta.url).resolve('ws/package.json'),
  );
  const root = mkdtempSync(join(tmpdir(), 'tb-ws-native-copy-'));
  defer(t, () => rmSync(root, {recursive: true, force: true}));
  const copyDir = join(root, 'node_modules', 'ws');
  cpSync(packageDir, copyDir, {recursive: true});
  const copy = await import(pathToFileURL(join(copyDir, 'wrapper.mjs')).href);
  // Not the same module twice: a different file, so different classes.
  assert.notEqual(realpathSync(copyDir), realpathSync(packageDir));
  assert.notEqual(copy.WebSocket, WebSocket);
  assert.notEqual(copy.WebSocketServer, WebSocketServer);
  return copy;
};

// Taken over: Node let go of the socket while its WebSocket is still open. Meaningful once the
// client has synced (Node releases the socket in a setImmediate after the connection event).
const isNative = (connection) =>
  connection.webSocket.readyState === WebSocket.OPEN &&
  connection.request.socket.destroyed;

test(
  'connections of another copy of ws are taken over, and an instrumented one stays in JS',
  options,
  async (t) => {
    const copy = await copyOfWs(t);
    const server = await startNative(t, {
      WebSocketServerClass: copy.WebSocketServer,
    });
    // Added before the server's own listener, as user code that wraps send() would be.
    let wrappedSends = 0;
    server.webSocketServer.prependListener(
      'connection',
      (webSocket, request) => {
        if (request.url.endsWith('?instrumented')) {
          const send = webSocket.send;
          webSocket.send = function (...args) {
            wrappedSends++;
            return send.apply(this, args);
          };
        }
      },
    );
    const path = 'copies';
    const clients = {
      first: await openTinyBase(t, server.url(path)),
      second: await openTinyBase(t, server.url(path)),
      instrumented: await openTinyBase(t, server.url(`${path}?instrumented`)),
    };
    const expected = {};
    for (const [name, client] of Object.entries(clients)) {
      client.store.setValue(name, name);
      expected[name] = name;
    }
    for (const [name, client] of Object.entries(clients)) {
      await waitForEqual(() => client.store.getValues(), expected, name);
    }
    const sides = {};
    for (const [name, client] of Object.entries(clients)) {
      sides[name] = await server.connection(client.key);
    }

    for (const name of ['first', 'second']) {
      const side = sides[name];
      assert.equal(isNative(side), true, `${name} taken over`);
      assert.equal(side.data, 0, `${name}: no data event in Node`);
      // The facade is still what the copy made: its class, its server's client set.
      assert.ok(side.webSocket instanceof copy.WebSocket, name);
      assert.ok(server.webSocketServer.clients.has(side.webSocket), name);
    }
    assert.equal(isNative(sides.instrumented), false);
    assert.ok(sides.instrumented.data > 0);
    assert.ok(wrappedSends > 0);

    assert.deepEqual(server.wsServer.getStats(), {paths: 1, clients: 3});
    assert.deepEqual(server.errors, []);

    // The facade of a taken-over socket of the copy sends natively (not a TinyBase message: its
    // client then leaves, which nothing after this checks).
    const received = [];
    clients.first.webSocket.on('message', (data) =>
      received.push(data.toString()),
    );
    sides.first.webSocket.send('from the facade');
    await waitFor(
      () => received.includes('from the facade'),
      'a message sent through the facade',
    );
  },
);

test(
  'a subclass of WebSocket is taken over as itself, unless it replaces what the takeover replaces',
  options,
  async (t) => {
    class Plain extends WebSocket {}
    class Overriding extends WebSocket {
      send(...args) {
        this.sends = (this.sends ?? 0) + 1;
        return super.send(...args);
      }
    }
    const plain = await startNative(t, {serverOptions: {WebSocket: Plain}});
    const overriding = await startNative(t, {
      serverOptions: {WebSocket: Overriding},
    });
    const plainClients = [
      await openTinyBase(t, plain.url('sub')),
      await openTinyBase(t, plain.url('sub')),
    ];
    const overridingClients = [
      await openTinyBase(t, overriding.url('sub')),
      await openTinyBase(t, overriding.url('sub')),
    ];
    for (const clients of [plainClients, overridingClients]) {
      clients[0].store.setValue('v', 1);
      await waitForEqual(() => clients[1].store.getValues(), {v: 1}, 'sync');
    }
    for (const client of plainClients) {
      const side = await plain.connection(client.key);
      assert.equal(isNative(side), true);
      assert.ok(side.webSocket instanceof Plain);
    }
    for (const client of overridingClients) {
      const side = await overriding.connection(client.key);
      assert.equal(isNative(side), false);
      assert.ok(side.webSocket.sends > 0);
    }
  },
);
