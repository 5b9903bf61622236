// The queue from the native plane towards the server clients in JS is bounded: while JS is behind,
// the sockets feeding it are not read, and once JS catches up they are read again, with nothing
// lost on the way.

import assert from 'node:assert/strict';
import test from 'node:test';
import {TEST_TIMEOUT_MS, waitFor} from '../support/harness.js';
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
