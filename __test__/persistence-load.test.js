// A change the server client is handed while its persister loads is saved. TinyBase's persister
// skips the saves asked for while it loads, then replaces the store's content with what it read,
// so a change applied meanwhile would be lost from the store and from storage. TinyBase's file
// persister loads again after some of its own saves, which made this happen in ordinary traffic.

import assert from 'node:assert/strict';
import test from 'node:test';
import {isDeepStrictEqual} from 'node:util';
import {createMergeableStore} from 'tinybase';
import {createCustomPersister} from 'tinybase/persisters';
import {
  TEST_TIMEOUT_MS,
  errorMessages,
  gate,
  openClient,
  plain,
  startServer,
  waitFor,
  waitForEqual,
} from './support/harness.js';
import {name as implementation} from './support/implementation.js';

// Persists.StoreOrMergeableStore: the server's stores are mergeable.
const STORE_OR_MERGEABLE_STORE = 3;

const noop = () => {};

test(
  'a change handed to the server client while its persister loads is saved',
  {
    timeout: TEST_TIMEOUT_MS,
    skip:
      implementation == 'reference' &&
      'TinyBase applies the change during the load, which then drops it',
  },
  async (t) => {
    const storage = new Map();
    let reload;
    let held;
    let reading = false;
    let handedOver = 0;
    const server = await startServer(t, {
      createPersisterForPath: (pathId) => {
        const persister = createCustomPersister(
          createMergeableStore(),
          async () => {
            // What storage held when the load began, as a file read before a save lands.
            const content = storage.get(pathId);
            reading = true;
            await held?.promise;
            return content;
          },
          async (getContent) => {
            storage.set(pathId, getContent());
          },
          (listener) => (reload = listener),
          noop,
          undefined,
          STORE_OR_MERGEABLE_STORE,
        );
        // The server settles every message it hands the server client on the schedule.
        return {
          ...persister,
          schedule: (...actions) => {
            handedOver++;
            return persister.schedule(...actions);
          },
        };
      },
    });
    // What storage holds, read as a fresh server would load it.
    const saved = async () => {
      const loader = createCustomPersister(
        createMergeableStore(),
        async () => storage.get('p'),
        noop,
        noop,
        noop,
        undefined,
        STORE_OR_MERGEABLE_STORE,
      );
      await loader.load();
      const values = plain(loader.getStore().getValues());
      await loader.destroy();
      return values;
    };
    const waitForSaved = async (expected) => {
      let last;
      await waitFor(
        async () => {
          last = await saved();
          return isDeepStrictEqual(last, expected);
        },
        `${JSON.stringify(expected)} to be saved`,
      ).catch((error) => {
        error.message += `; last seen ${JSON.stringify(last)}`;
        throw error;
      });
    };
    const [writer, reader] = [
      await openClient(t, server.url('p')),
      await openClient(t, server.url('p')),
    ];
    writer.store.setValue('a', 1);
    await waitForSaved({a: 1});

    // The persister's listener asks for a load, which reads and then waits.
    held = gate();
    reading = false;
    reload();
    await waitFor(() => reading, 'the load to read');
    const before = handedOver;
    writer.store.setValue('b', 2);
    await waitForEqual(() => reader.store.getValues(), {a: 1, b: 2}, 'reader');
    await waitFor(
      () => handedOver > before,
      'the server client to be handed the change',
    );
    held.open();

    await waitForSaved({a: 1, b: 2});
    // Only the server client's first request may go unanswered, if a client had not started
    // syncing yet (tinybase:3), as in TinyBase.
    assert.deepEqual(
      errorMessages(server.errors).filter(
        (message) => !message.startsWith('tinybase:3:'),
      ),
      [],
    );
  },
);
