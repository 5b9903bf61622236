// The native plane's heartbeat: a peer that never answers pings is dropped and reported like any
// leaving client, while a peer that answers them (ws does by itself) stays for as long as it likes.

import assert from 'node:assert/strict';
import {once} from 'node:events';
import test from 'node:test';
import {WebSocket} from 'ws';
import {TEST_TIMEOUT_MS, waitFor, withTimeout} from '../support/harness.js';
import {
  OPCODES,
  hashesRequest,
  openTcp,
  openWs,
  requestIdOf,
  startNative,
} from './support/native.js';

const options = {timeout: TEST_TIMEOUT_MS};

test(
  'a peer that never answers pings is dropped and reported; peers that answer them stay',
  options,
  async (t) => {
    const server = await startNative(t, {
      nativeOptions: {heartbeatSeconds: 0.2, heartbeatMisses: 1},
    });
    const pathChanges = [];
    const clientChanges = [];
    server.wsServer.addPathIdsListener((_, pathId, change) =>
      pathChanges.push([pathId, change]),
    );
    server.wsServer.addClientIdsListener(null, (_, pathId, clientId, change) =>
      clientChanges.push([pathId, clientId, change]),
    );

    // A ws client pongs by itself; this bare one is made to answer each ping with its pong.
    const alive = await openWs(t, server.url('alive'));
    const answering = await openTcp(t, server.port, 'alive');
    let answered = 0;
    answering.socket.on('data', () => {
      const pings = answering.frames.filter(
        ({opcode}) => opcode === OPCODES.ping,
      );
      for (; answered < pings.length; answered++) {
        answering.send(OPCODES.pong, pings[answered].payload);
      }
    });
    let pings = 0;
    alive.webSocket.on('ping', () => pings++);

    // Upgraded by hand, so nothing answers for it.
    const silent = await openTcp(t, server.port, 'silent');
    const silentSide = await server.connection(silent.key);
    const facadeClosed = once(silentSide.webSocket, 'close');
    await withTimeout(silent.ended, 'the silent peer to be dropped');
    const [code] = await withTimeout(facadeClosed, 'its facade to close');
    assert.equal(code, 1006);
    // With one miss allowed it was pinged once, and that went unanswered.
    assert.ok(
      silent.frames.some(({opcode}) => opcode === OPCODES.ping),
      'the silent peer was pinged',
    );
    await waitFor(
      () =>
        pathChanges.some(
          ([pathId, change]) => pathId === 'silent' && change === -1,
        ),
      'the silent path to go',
    );
    assert.deepEqual(
      pathChanges.filter(([pathId]) => pathId === 'silent'),
      [
        ['silent', 1],
        ['silent', -1],
      ],
    );
    assert.deepEqual(
      clientChanges.filter(([pathId]) => pathId === 'silent'),
      [
        ['silent', silent.key, 1],
        ['silent', silent.key, -1],
      ],
    );

    // Several more intervals, counted by the pings the answering peers got.
    await waitFor(() => pings >= 5 && answered >= 5, 'five pings each');
    assert.equal(alive.webSocket.readyState, WebSocket.OPEN);
    assert.equal(answering.socket.readableEnded, false);
    assert.deepEqual(
      server.wsServer.getClientIds('alive').sort(),
      [alive.key, answering.key].sort(),
    );
    assert.ok(
      clientChanges.every(
        ([pathId, , change]) => pathId !== 'alive' || change === 1,
      ),
      JSON.stringify(clientChanges),
    );
    // And they still relay.
    alive.send(hashesRequest('still here', answering.key));
    await waitFor(() => answering.texts().length === 1, 'the relay');
    assert.equal(requestIdOf(answering.texts()[0]), 'still here');
  },
);
