// A client that returns to a persisted path at once, while the incarnation its predecessors left
// is still saving, gets what they sent: the new incarnation loads only once the old one has saved
// and stopped. TinyBase's own server loads the new one at once, so there the race is lost now and
// then; this server closes it. The persister saves slowly on purpose, to widen the window, and the
// round is repeated to catch the race, on both planes.

import test from 'node:test';
import {setTimeout as delay} from 'node:timers/promises';
import {WebSocket} from 'ws';
import {createMergeableStore} from 'tinybase';
import {createCustomPersister} from 'tinybase/persisters';
import {
  TEST_TIMEOUT_MS,
  openClient,
  startServer,
  waitFor,
  waitForEqual,
  withTimeout,
} from './support/harness.js';
import {name as implementation} from './support/implementation.js';

const ROUNDS = 20;
// Persists.StoreOrMergeableStore: the server's stores are mergeable.
const STORE_OR_MERGEABLE_STORE = 3;

// TinyBase's own persister over a Map, whose every save takes tens of milliseconds.
const createSlowPersister = (storage, pathId) =>
  createCustomPersister(
    createMergeableStore(),
    async () => storage.get(pathId),
    async (getContent) => {
      await delay(30);
      storage.set(pathId, getContent());
    },
    () => undefined,
    () => undefined,
    undefined,
    STORE_OR_MERGEABLE_STORE,
  );

const PLANES = {
  native: {perMessageDeflate: false},
  js: {perMessageDeflate: true},
};

for (const [plane, clientOptions] of Object.entries(PLANES)) {
  test(
    `${plane} plane: a client returning at once to a path still saving gets what was sent last (${ROUNDS} rounds)`,
    {
      timeout: TEST_TIMEOUT_MS * 4,
      skip:
        implementation == 'reference' &&
        'TinyBase loads a returning path before the old one has saved',
    },
    async (t) => {
      const storage = new Map();
      const server = await startServer(t, {
        createPersisterForPath: (pathId) =>
          createSlowPersister(storage, pathId),
        options: {perMessageDeflate: true},
      });
      const url = server.url('slow');
      const connect = (st) =>
        openClient(st, url, {
          webSocket: new WebSocket(url, [], clientOptions),
        });
      for (let round = 0; round < ROUNDS; round++) {
        await t.test(`round ${round}`, async (st) => {
          const [writer, reader] = [await connect(st), await connect(st)];
          writer.store.setValue('round', round);
          await waitForEqual(
            () => reader.store.getValues(),
            {round},
            'the other client',
          );
          // Both leave, and a client comes back as soon as the path is stopping.
          for (const client of [writer, reader]) {
            await client.synchronizer.destroy();
            client.webSocket.close();
          }
          await waitFor(
            () => server.wsServer.getClientIds('slow').length == 0,
            'the last clients to leave',
          );
          const returning = await connect(st);
          await waitForEqual(
            () => returning.store.getValues(),
            {round},
            'what the last clients sent',
          );
          await returning.synchronizer.destroy();
          returning.webSocket.close();
          await withTimeout(returning.closed, 'the returning client to close');
        });
      }
    },
  );
}
