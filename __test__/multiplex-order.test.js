// When a multiplexed socket's channels are acknowledged, torn down and reported, and what the
// server's API says once a client has seen an effect: TinyBase's order, on both planes (a socket
// that negotiates permessage-deflate stays in JS; one that does not is taken over natively).

import assert from 'node:assert/strict';
import test from 'node:test';
import {WebSocket} from 'ws';
import {createMergeableStore} from 'tinybase';
import {createWsSynchronizer} from 'tinybase/synchronizers/synchronizer-ws-client';
import {
  TEST_TIMEOUT_MS,
  defer,
  errorMessages,
  gate,
  openClient,
  openRawMultiplex,
  startServer,
  waitFor,
  withTimeout,
} from './support/harness.js';
import {name as implementation} from './support/implementation.js';
import {createMemoryPersister} from './support/persisters.js';

const options = {timeout: TEST_TIMEOUT_MS};

// The client options that put the server's side of a connection on each plane.
const PLANES = {
  native: {perMessageDeflate: false},
  js: {perMessageDeflate: true},
};

// A server that accepts permessage-deflate, so that each client chooses its plane. With the native
// server, every connection is checked to be on the plane the test meant.
const startOnPlanes = async (t, plane, settings = {}) => {
  const server = await startServer(t, {
    ...settings,
    options: {perMessageDeflate: true},
  });
  if (implementation == 'native') {
    const {getConnectionPlane} = await import('../index.js');
    server.webSocketServer.on('connection', (webSocket) =>
      assert.equal(getConnectionPlane(webSocket)?.plane, plane),
    );
  }
  return server;
};

const multiplexedSocket = (t, url, plane) => {
  const webSocket = new WebSocket(url, ['tinybase'], PLANES[plane]);
  defer(t, () => webSocket.terminate());
  return webSocket;
};

for (const plane of Object.keys(PLANES)) {
  test(
    `${plane} plane: a multiplexed socket that closes reports the first teardown error once every channel has settled`,
    options,
    async (t) => {
      const log = [];
      const second = gate();
      const server = await startOnPlanes(t, plane, {
        createPersisterForPath: (pathId) =>
          createMemoryPersister({
            pathId,
            log,
            hooks: {
              destroy: pathId.endsWith('/first')
                ? async () => {
                    throw new Error('first failed');
                  }
                : async () => {
                    await second.promise;
                    throw new Error('second failed');
                  },
            },
          }),
        onIgnoredError: (error) => log.push(`error: ${error.message}`),
      });
      // Opened before the server is destroyed, which waits for it.
      defer(t, () => second.open());
      const url = server.url('teardown');
      const webSocket = multiplexedSocket(t, url, plane);
      for (const channelId of ['first', 'second']) {
        await openClient(t, url, {channelId, webSocket});
      }
      log.length = 0;
      webSocket.close();
      // Polled across turns of the event loop: had the first channel's error been reported on
      // its own, it would be in the log before the second channel's teardown has begun.
      await waitFor(
        () => log.includes('teardown/second: destroy'),
        "the second channel's teardown",
      );
      assert.ok(log.includes('teardown/first: destroy'));
      assert.deepEqual(
        log.filter((line) => line.startsWith('error')),
        [],
      );
      second.open();
      await waitFor(
        () => log.some((line) => line.startsWith('error')),
        'the error to be reported',
      );
      await waitFor(
        () => server.wsServer.getPathIds().length == 0,
        'both paths to go',
      );
      assert.deepEqual(
        log.filter((line) => line.startsWith('error')),
        ['error: first failed'],
      );
      // Reported only after the second channel's whole teardown, synchronizer included.
      assert.ok(
        log.indexOf('teardown/second: synchronizer stops listening') <
          log.indexOf('error: first failed'),
        JSON.stringify(log),
      );
    },
  );

  test(
    `${plane} plane: a subscription is acknowledged once the persister factory was called, and a re-subscription during teardown calls it again at once`,
    options,
    async (t) => {
      const calls = [];
      const log = [];
      const destroying = gate();
      const server = await startOnPlanes(t, plane, {
        createPersisterForPath: (pathId) => {
          calls.push(pathId);
          return createMemoryPersister({
            pathId,
            log,
            hooks: {destroy: () => destroying.promise},
          });
        },
      });
      // Opened before the server is destroyed, which waits for it.
      defer(t, () => destroying.open());
      const url = server.url('acks');
      // A real TinyBase client: its subscription resolves once acknowledged.
      const webSocket = multiplexedSocket(t, url, plane);
      const synchronizer = await withTimeout(
        createWsSynchronizer(createMergeableStore(), webSocket, 'files'),
        'the subscription',
      );
      defer(t, () => synchronizer.destroy());
      assert.deepEqual(calls, ['acks/files']);

      // A bare client drops a channel while the server may still be syncing on it, which
      // TinyBase's client would take as a broken socket.
      const raw = await openRawMultiplex(t, server, 'acks', {
        options: PLANES[plane],
      });
      await raw.hello();
      await raw.subscribe('again');
      assert.deepEqual(calls, ['acks/files', 'acks/again']);
      raw.unsubscribe('again');
      await waitFor(
        () => log.includes('acks/again: destroy'),
        'the teardown to start',
      );
      // Its persister's destroy() is still pending: a new incarnation starts at once.
      await raw.subscribe('again');
      assert.deepEqual(calls, ['acks/files', 'acks/again', 'acks/again']);
      assert.equal(log.includes('acks/again: destroy done'), false);
      destroying.open();
      await waitFor(
        () => log.includes('acks/again: destroy done'),
        'the old incarnation to stop',
      );
      assert.deepEqual(server.wsServer.getClientIds('acks/again'), [raw.id]);
    },
  );

  test(
    `${plane} plane: the stats read when a client sees its channels overflow are those that closed it`,
    options,
    async (t) => {
      const configuring = gate();
      const server = await startOnPlanes(t, plane, {
        createPersisterForPath: () => configuring.promise,
      });
      // Opened before the server is destroyed, which waits for it.
      defer(t, () => configuring.open());
      const raw = await openRawMultiplex(t, server, '', {
        options: PLANES[plane],
      });
      await raw.hello();
      // Each unsubscribed channel still counts until its path is torn down, which waits for the
      // factory: 200 channels reach the limit of resources.
      for (let index = 0; index < 200; index++) {
        await raw.subscribe(`c${index}`);
        raw.unsubscribe(`c${index}`);
      }
      raw.send(`S\n${JSON.stringify(['over', -1, [1, 'c200']])}`);
      // Read in the same turn as the close reaches the client.
      const seen = await withTimeout(
        raw.closed.then((closed) => ({
          closed,
          stats: server.wsServer.getStats(),
          paths: server.wsServer.getPathIds().length,
        })),
        'the overflow close',
      );
      assert.deepEqual(seen, {
        closed: {code: 1013, reason: 'tinybase:15:channels'},
        stats: {paths: 200, clients: 0},
        paths: 200,
      });
      assert.ok(errorMessages(server.errors).includes('tinybase:15:channels'));
    },
  );
}
