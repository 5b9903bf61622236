// Which plane serves each connection is visible: counted per server and for the process, told per
// connection with the reason it stayed in JS, and warned about once when the user can change it.

import assert from 'node:assert/strict';
import {EventEmitter} from 'node:events';
import test from 'node:test';
import {
  TEST_TIMEOUT_MS,
  waitFor,
  waitForEqual,
  withTimeout,
} from '../support/harness.js';
import {getConnectionPlane, getPlaneStats} from '../../index.js';
import {openTinyBase, startNative} from './support/native.js';

const options = {timeout: TEST_TIMEOUT_MS};

// Every warning of this package the process emits, from the start of this file.
const warnings = [];
process.on('warning', (warning) => {
  if (warning.name === 'TinyBaseWsServerNativeWarning') {
    warnings.push(warning.code);
  }
});

const minus = (after, before) => ({
  native: {
    opened: after.native.opened - before.native.opened,
    open: after.native.open - before.native.open,
  },
  js: {
    opened: after.js.opened - before.js.opened,
    open: after.js.open - before.js.open,
    byReason: Object.fromEntries(
      Object.entries(after.js.byReason)
        .map(([reason, count]) => [
          reason,
          count - (before.js.byReason[reason] ?? 0),
        ])
        .filter(([, count]) => count > 0),
    ),
  },
});

test(
  'each connection is counted on its plane, with why it stayed in JS, and a fixable reason warns once',
  options,
  async (t) => {
    const processBefore = getPlaneStats();
    const server = await startNative(t, {perMessageDeflate: true});
    assert.deepEqual(getPlaneStats(server.wsServer), {
      native: {opened: 0, open: 0},
      js: {opened: 0, open: 0, byReason: {}},
    });
    // User code that listens to messages before the server's own listener runs.
    server.webSocketServer.prependListener(
      'connection',
      (webSocket, request) => {
        if (request.url.endsWith('?listened')) {
          webSocket.on('message', () => {});
        }
      },
    );
    const path = 'planes';
    const clients = {
      native1: await openTinyBase(t, server.url(path)),
      native2: await openTinyBase(t, server.url(path)),
      deflate1: await openTinyBase(t, server.url(path), {
        options: {perMessageDeflate: true},
      }),
      deflate2: await openTinyBase(t, server.url(path), {
        options: {perMessageDeflate: true},
      }),
      listened: await openTinyBase(t, server.url(`${path}?listened`)),
    };
    const expected = {};
    for (const [name, client] of Object.entries(clients)) {
      client.store.setValue(name, name);
      expected[name] = name;
    }
    for (const [name, client] of Object.entries(clients)) {
      await waitForEqual(() => client.store.getValues(), expected, name);
    }

    const planes = {};
    for (const [name, client] of Object.entries(clients)) {
      planes[name] = getConnectionPlane(
        (await server.connection(client.key)).webSocket,
      );
    }
    assert.deepEqual(planes, {
      native1: {plane: 'native'},
      native2: {plane: 'native'},
      deflate1: {plane: 'js', reason: 'deflate'},
      deflate2: {plane: 'js', reason: 'deflate'},
      listened: {plane: 'js', reason: 'instrumented'},
    });
    const counts = {
      native: {opened: 2, open: 2},
      js: {opened: 3, open: 3, byReason: {deflate: 2, instrumented: 1}},
    };
    assert.deepEqual(getPlaneStats(server.wsServer), counts);
    assert.deepEqual(minus(getPlaneStats(), processBefore), counts);
    // Two connections kept in JS for permessage-deflate, one warning; one for the listener.
    await waitFor(() => warnings.length === 2, 'two warnings');
    assert.deepEqual(warnings.sort(), ['TBWSN001', 'TBWSN002']);

    // A copy, not the live counts.
    getPlaneStats(server.wsServer).native.open = 100;
    assert.equal(getPlaneStats(server.wsServer).native.open, 2);
    assert.equal(getPlaneStats({}), undefined);
    assert.equal(getConnectionPlane(clients.native1.webSocket), undefined);

    clients.native1.webSocket.close();
    clients.deflate1.webSocket.close();
    await waitForEqual(
      () => getPlaneStats(server.wsServer),
      {
        native: {opened: 2, open: 1},
        js: {opened: 3, open: 2, byReason: {deflate: 2, instrumented: 1}},
      },
      'the closes to be counted',
    );
    await withTimeout(server.wsServer.destroy(), 'destroy');
    assert.deepEqual(getPlaneStats(server.wsServer), {
      native: {opened: 2, open: 0},
      js: {opened: 3, open: 0, byReason: {deflate: 2, instrumented: 1}},
    });
    assert.deepEqual(warnings.sort(), ['TBWSN001', 'TBWSN002']);
  },
);

test(
  'a WebSocket not built as ws 8 builds it stays in JS as an unknown shape, with its warning',
  options,
  async (t) => {
    const server = await startNative(t);
    // What another WebSocket library might hand over: the events and methods, none of ws's insides.
    const webSocket = Object.assign(new EventEmitter(), {
      OPEN: 1,
      CLOSED: 3,
      readyState: 1,
      protocol: '',
      sent: [],
      send(data) {
        this.sent.push(data);
      },
      close() {},
    });
    server.webSocketServer.emit('connection', webSocket, {
      url: '/double',
      headers: {'sec-websocket-key': 'double-key'},
    });
    assert.deepEqual(getConnectionPlane(webSocket), {
      plane: 'js',
      reason: 'unknown-ws-shape',
    });
    await waitFor(
      () => server.wsServer.getClientIds('double').includes('double-key'),
      'the double to join',
    );
    await waitFor(() => warnings.includes('TBWSN003'), 'its warning');
    assert.deepEqual(getPlaneStats(server.wsServer).js, {
      opened: 1,
      open: 1,
      byReason: {'unknown-ws-shape': 1},
    });
    webSocket.readyState = 3;
    webSocket.emit('close', 1000, Buffer.alloc(0));
    assert.equal(getPlaneStats(server.wsServer).js.open, 0);
  },
);
