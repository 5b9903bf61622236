// keepPathSeconds: a persisted path stays loaded for a while after its last client leaves, so a
// client that comes back in time syncs without the factory being called again; after that, or at
// destroy(), it stops and its persister is destroyed as usual.

import assert from 'node:assert/strict';
import test from 'node:test';
import {WebSocketServer} from 'ws';
import {getMetrics} from '../../index.js';
import {TEST_TIMEOUT_MS, waitFor, waitForEqual} from '../support/harness.js';
import {createMemoryPersister} from '../support/persisters.js';
import {createWsServer, openTinyBase, startNative} from './support/native.js';

const options = {timeout: TEST_TIMEOUT_MS};
const PETS = {pets: {fido: {species: 'dog'}}};

// A server whose factory counts its calls and logs each persister's steps.
const startCounting = async (t, keepPathSeconds) => {
  const storage = new Map();
  const log = [];
  // factoryCalls is read through this object, as it changes.
  const counted = {factoryCalls: 0, log, storage, pathChanges: []};
  const server = await startNative(t, {
    perMessageDeflate: true,
    nativeOptions: {keepPathSeconds},
    createPersisterForPath: (pathId) => {
      counted.factoryCalls++;
      return createMemoryPersister({pathId, storage, log});
    },
  });
  server.wsServer.addPathIdsListener((_, pathId, change) =>
    counted.pathChanges.push([pathId, change]),
  );
  return Object.assign(counted, server);
};

// A client that writes a pet, waits until it is saved, and leaves.
const visit = async (t, server, clientOptions) => {
  const client = await openTinyBase(t, server.url('warm'), clientOptions);
  client.store.setCell('pets', 'fido', 'species', 'dog');
  await waitFor(
    () => JSON.stringify(server.storage.get('warm') ?? '').includes('"dog"'),
    'the pet to be saved',
  );
  await client.synchronizer.destroy();
  client.webSocket.close();
  await waitFor(
    () => server.wsServer.getClientIds('warm').length == 0,
    'the client to leave',
  );
};

const pathsActive = (wsServer) =>
  getMetrics(wsServer).find(({name}) => name == 'tinybase_ws_paths_active')
    .values[0].value;

for (const plane of ['native', 'js']) {
  const clientOptions = {options: {perMessageDeflate: plane == 'js'}};

  test(
    `a client returning within keepPathSeconds syncs with no reload (${plane} plane)`,
    options,
    async (t) => {
      const server = await startCounting(t, 600);
      await visit(t, server, clientOptions);
      // Still loaded: listed as TinyBase lists a path whose server client runs.
      assert.deepEqual(server.wsServer.getPathIds(), ['warm']);
      assert.equal(pathsActive(server.wsServer), 1);

      const returning = await openTinyBase(
        t,
        server.url('warm'),
        clientOptions,
      );
      await waitForEqual(
        () => returning.store.getTables(),
        PETS,
        'the returning client to sync',
      );
      assert.equal(server.factoryCalls, 1);
      assert.ok(!server.log.includes('warm: destroy'), server.log.join());
      assert.deepEqual(server.pathChanges, [['warm', 1]]);
    },
  );
}

test(
  'once keepPathSeconds runs out the path stops, and the next client starts it anew',
  options,
  async (t) => {
    const server = await startCounting(t, 0.2);
    await visit(t, server, {});
    await waitFor(
      () => server.wsServer.getPathIds().length == 0,
      'the warm path to stop',
    );
    assert.ok(server.log.includes('warm: destroy done'), server.log.join());
    assert.deepEqual(server.pathChanges, [
      ['warm', 1],
      ['warm', -1],
    ]);

    const returning = await openTinyBase(t, server.url('warm'));
    await waitForEqual(
      () => returning.store.getTables(),
      PETS,
      'the returning client to load the saved pet',
    );
    assert.equal(server.factoryCalls, 2);
  },
);

test(
  'destroy() stops a path kept warm and destroys its persister',
  options,
  async (t) => {
    const server = await startCounting(t, 600);
    await visit(t, server, {});
    assert.deepEqual(server.wsServer.getPathIds(), ['warm']);
    await server.wsServer.destroy();
    assert.ok(server.log.includes('warm: destroy done'), server.log.join());
    assert.match(JSON.stringify(server.storage.get('warm')), /"dog"/);
    assert.equal(server.factoryCalls, 1);
    assert.deepEqual(server.wsServer.getPathIds(), []);
  },
);

test('keepPathSeconds must be a finite number, 0 or more', options, () => {
  const webSocketServer = new WebSocketServer({noServer: true});
  for (const keepPathSeconds of [-1, NaN, Infinity]) {
    assert.throws(
      () =>
        createWsServer(webSocketServer, undefined, undefined, 1, undefined, {
          keepPathSeconds,
        }),
      /keepPathSeconds/,
    );
  }
  webSocketServer.close();
});
