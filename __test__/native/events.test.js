// What a listener sees of the server while it is called. Native sockets are routed on the plane's
// threads and their events reach JS later, in batches; a listener must still see the server as it
// was when its own change happened, as it does with ws, where each socket's close is handled on
// its own.

import assert from 'node:assert/strict';
import test from 'node:test';
import {TEST_TIMEOUT_MS, waitFor} from '../support/harness.js';
import {
  OPCODES,
  closePayload,
  openTcp,
  parseHead,
  startNative,
} from './support/native.js';

const options = {timeout: TEST_TIMEOUT_MS};

// Blocks the JS thread (bounded) until `condition` holds; the native plane keeps working.
const blockUntil = (condition, ms) => {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const deadline = Date.now() + ms;
  while (!condition() && Date.now() < deadline) {
    Atomics.wait(pause, 0, 0, 5);
  }
};

test(
  'a client ids listener sees the count as of its own change when two clients leave together',
  options,
  async (t) => {
    for (const [plane, deflate] of [
      ['ws, in JS', true],
      ['native', false],
    ]) {
      await t.test(plane, async (st) => {
        const server = await startNative(st, {perMessageDeflate: true});
        const path = `together-${deflate ? 'js' : 'native'}`;
        const headers = deflate
          ? {'Sec-WebSocket-Extensions': 'permessage-deflate'}
          : {};
        const clients = [
          await openTcp(st, server.port, path, {headers}),
          await openTcp(st, server.port, path, {headers}),
        ];
        for (const client of clients) {
          assert.equal(
            'sec-websocket-extensions' in parseHead(client.head).headers,
            deflate,
          );
        }
        await waitFor(
          () => server.wsServer.getClientIds(path).length === 2,
          'both clients to join',
        );
        const seen = [];
        server.wsServer.addClientIdsListener(path, (wsServer, _, __, change) =>
          seen.push([change, wsServer.getClientIds(path).length]),
        );
        // Both Close frames are in the server's hands before JS can handle either: the native
        // plane routes them meanwhile, ws only once the thread is free again.
        for (const client of clients) {
          client.send(OPCODES.close, closePayload(1000));
        }
        blockUntil(() => server.wsServer.getStats().clients === 0, 500);
        await waitFor(() => seen.length === 2, 'both leaves');
        assert.deepEqual(seen, [
          [-1, 1],
          [-1, 0],
        ]);
      });
    }
  },
);
