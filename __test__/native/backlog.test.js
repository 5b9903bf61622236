// The queue from the native plane towards the server clients in JS is bounded: while JS is behind,
// the sockets feeding it are not read, and once JS catches up they are read again, with nothing
// lost on the way. A server client whose persister is behind gets its path's messages only as it
// settles them, the diffs among them merged.

import assert from 'node:assert/strict';
import test from 'node:test';
import {createMergeableStore} from 'tinybase';
import {createCustomPersister, Persists} from 'tinybase/persisters';
import {
  TEST_TIMEOUT_MS,
  defer,
  gate,
  openClient,
  plain,
  waitFor,
  waitForEqual,
} from '../support/harness.js';
import {createMemoryPersister} from '../support/persisters.js';
import {
  hashesRequest,
  openWs,
  requestIdOf,
  startNative,
} from './support/native.js';

const options = {timeout: TEST_TIMEOUT_MS};

// Well past the number of server-client messages the hub lets wait for JS (256).
const REQUESTS = 1000;
const BLOCK_MS = 300;

// Blocks the JS thread for `ms` while the native plane keeps reading.
const blockFor = (ms) =>
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

test(
  'a server client far behind its socket answers every request once JS catches up',
  options,
  async (t) => {
    const server = await startNative(t, {
      createPersisterForPath: (pathId) => createMemoryPersister({pathId}),
    });
    const client = await openWs(t, server.url('backlog'));
    // The server client's answers: 'S\n[requestId, 0, hashes]'.
    const answers = () =>
      client.messages
        .filter((message) => message.startsWith('S\n'))
        .filter((message) => JSON.parse(message.slice(2))[1] === 0)
        .map(requestIdOf);

    client.send(hashesRequest('ready', 'S'));
    await waitFor(() => answers().includes('ready'), 'the server client');

    const requestIds = Array.from(
      {length: REQUESTS},
      (_, index) => `request-${index}`,
    );
    for (const requestId of requestIds) {
      client.send(hashesRequest(requestId, 'S'));
    }
    // The requests reach the plane while JS cannot take any of them.
    blockFor(BLOCK_MS);

    await waitFor(
      () => answers().length >= REQUESTS + 1,
      `answers to all ${REQUESTS} requests`,
    );
    assert.deepEqual(answers(), ['ready', ...requestIds]);
    // The one error allowed: the server client's own request to this client, which never
    // answers it, timing out.
    assert.deepEqual(
      server.errors
        .map((error) => error.message)
        .filter((message) => !message.startsWith('tinybase:3:')),
      [],
    );
  },
);

test(
  'a server client saving slower than its clients write is handed their diffs merged, losing none',
  options,
  async (t) => {
    const WRITES = 60;
    let saves = 0;
    let saving;
    let persisted;
    const server = await startNative(t, {
      createPersisterForPath: () =>
        createCustomPersister(
          createMergeableStore(),
          async () => undefined,
          async (getContent) => {
            saves++;
            await saving?.promise;
            persisted = getContent();
          },
          () => 0,
          () => 0,
          undefined,
          Persists.MergeableStoreOnly,
        ),
    });
    defer(t, () => saving?.open());
    const writer = await openClient(t, server.url('slow'));
    const reader = await openClient(t, server.url('slow'));
    writer.store.setValue('ready', true);
    await waitForEqual(() => reader.store.getValues(), {ready: true});
    await waitFor(() => persisted?.[1][0].ready, 'the first save');

    saving = gate();
    const savesBefore = saves;
    for (let index = 0; index < WRITES; index++) {
      // Each call is a transaction of its own, which the writer sends as a ContentDiff.
      writer.store.setCell('pets', `pet${index}`, 'legs', index);
      writer.store.setValue('last', index);
    }
    // The reader hears every diff through the relay, which hands the server client its copy at
    // the same moment: all of them have reached the server while its first save is held.
    await waitForEqual(() => reader.store.getValue('last'), WRITES - 1);
    saving.open();

    const written = plain(writer.store.getContent());
    const saved = () => {
      const store = createMergeableStore();
      store.setMergeableContent(persisted);
      return plain(store.getContent());
    };
    await waitForEqual(saved, written, 'the saved content');
    // Applied one by one the diffs would have queued a save each; merged, the first diff's save
    // is followed by one for all the others.
    assert.ok(
      saves - savesBefore <= 3,
      `${saves - savesBefore} saves for ${2 * WRITES} diffs`,
    );
    assert.deepEqual(
      server.errors
        .map((error) => error.message)
        .filter((message) => !message.startsWith('tinybase:3:')),
      [],
    );
  },
);

test(
  "a persister that never finishes saving holds up only its own path's server client",
  options,
  async (t) => {
    const MESSAGES = 400;
    const hung = gate();
    let hanging = false;
    const server = await startNative(t, {
      createPersisterForPath: (pathId) =>
        pathId == 'stuck'
          ? createCustomPersister(
              createMergeableStore(),
              async () => undefined,
              async () => {
                if (hanging) {
                  await hung.promise;
                }
              },
              () => 0,
              () => 0,
              undefined,
              Persists.MergeableStoreOnly,
            )
          : undefined,
    });
    // Registered after startNative's own cleanup, so it runs first: the path can then stop.
    defer(t, () => hung.open());
    const writer = await openClient(t, server.url('stuck'));
    const asker = await openWs(t, server.url('stuck'));
    writer.store.setValue('ready', true);
    await waitFor(() => server.wsServer.getClientIds('stuck').length == 2);

    hanging = true;
    // Writes that cannot merge (each a row id JS would list before the last), more than a busy
    // server client may have waiting.
    for (let index = 0; index < MESSAGES; index++) {
      writer.store.setCell('rows', String(MESSAGES - index), 'n', index);
    }
    // Requests the server client answers whatever its persister is doing.
    for (let index = 0; index < MESSAGES; index++) {
      asker.send(hashesRequest(`ask-${index}`, 'S'));
    }
    await waitFor(
      () =>
        asker.messages.filter((message) => message.startsWith('S\n')).length >=
        MESSAGES,
      'the server client to answer every request',
    );

    // Another path relays on.
    const from = await openWs(t, server.url('elsewhere'));
    const to = await openWs(t, server.url('elsewhere'));
    for (let index = 0; index < MESSAGES; index++) {
      from.send(hashesRequest(`relay-${index}`));
    }
    await waitFor(
      () => to.messages.length >= MESSAGES,
      'every message on the other path',
    );
    assert.deepEqual(
      to.messages.map(requestIdOf),
      Array.from({length: MESSAGES}, (_, index) => `relay-${index}`),
    );
  },
);
