// The traps of taking a ws connection over (docs: /work/shared/design/connection-takeover.md),
// each seen from where JavaScript can see it: what the client receives, what the server-side
// socket and WebSocket objects look like, and what the server reports.

import assert from 'node:assert/strict';
import {randomBytes} from 'node:crypto';
import {once} from 'node:events';
import {readFileSync, readdirSync, readlinkSync} from 'node:fs';
import test from 'node:test';
import {WebSocket, WebSocketServer} from 'ws';
import {
  TEST_TIMEOUT_MS,
  defer,
  waitFor,
  waitForEqual,
  withTimeout,
} from '../support/harness.js';
import {createMemoryPersister} from '../support/persisters.js';
import {
  OPCODES,
  acceptKey,
  clientFrame,
  closePayload,
  createWsServer,
  hashesRequest,
  openTcp,
  openTinyBase,
  openWs,
  parseHead,
  requestIdOf,
  senderOf,
  startNative,
} from './support/native.js';

const options = {timeout: TEST_TIMEOUT_MS};

const nextImmediate = () => new Promise((resolve) => setImmediate(resolve));

const joined = (server, path, key) =>
  waitFor(
    () => server.wsServer.getClientIds(path).includes(key),
    `${key} to join '${path}'`,
  );

// Node releases a taken-over socket in a setImmediate after the connection event.
const released = (connection) =>
  waitFor(
    () => connection.request.socket.destroyed,
    'Node to release its socket',
  );

test(
  'trap 1: 50 clients × 200 messages sent in the open tick arrive once each, in order',
  options,
  async (t) => {
    const PATHS = 10;
    const SENDERS_PER_PATH = 5;
    const MESSAGES = 200;
    const server = await startNative(t);
    const receivers = [];
    for (let index = 0; index < PATHS; index++) {
      const receiver = await openWs(t, server.url(`eager${index}`));
      await joined(server, `eager${index}`, receiver.key);
      receivers.push(receiver);
    }
    const senders = [];
    for (let index = 0; index < PATHS * SENDERS_PER_PATH; index++) {
      const path = `eager${index % PATHS}`;
      const webSocket = new WebSocket(server.url(path), {
        perMessageDeflate: false,
      });
      webSocket.on('error', () => {});
      defer(t, async () => {
        if (webSocket.readyState !== WebSocket.CLOSED) {
          const closed = once(webSocket, 'close');
          webSocket.close();
          await withTimeout(closed, 'a sender to close');
        }
      });
      // All of it in the open tick, before the client could have heard anything back; the last
      // message marks the end, so anything duplicated would have arrived before it.
      webSocket.on('open', () => {
        for (let message = 0; message < MESSAGES; message++) {
          webSocket.send(hashesRequest(`m${message}`));
        }
        webSocket.send(hashesRequest('end'));
      });
      senders.push({
        path,
        webSocket,
        key: webSocket._req.getHeader('sec-websocket-key'),
      });
    }
    for (const [index, receiver] of receivers.entries()) {
      await waitFor(
        () =>
          receiver.messages.filter((message) => requestIdOf(message) === 'end')
            .length === SENDERS_PER_PATH,
        `every sender's end marker at receiver ${index}`,
      );
    }
    const expected = [
      ...Array.from({length: MESSAGES}, (_, message) => `m${message}`),
      'end',
    ];
    for (const [index, receiver] of receivers.entries()) {
      const path = `eager${index}`;
      const mine = senders.filter((sender) => sender.path === path);
      assert.equal(receiver.messages.length, mine.length * expected.length);
      for (const sender of mine) {
        assert.deepEqual(
          receiver.messages
            .filter((message) => senderOf(message) === sender.key)
            .map(requestIdOf),
          expected,
          `${sender.key} at receiver ${index}`,
        );
      }
    }
    assert.deepEqual(server.errors, []);
  },
);

test(
  'trap 1: 50 clients × 200 messages pipelined with the upgrade request arrive once each, in order',
  options,
  async (t) => {
    const PATHS = 10;
    const SENDERS_PER_PATH = 5;
    const MESSAGES = 200;
    const server = await startNative(t);
    const receivers = [];
    for (let index = 0; index < PATHS; index++) {
      const receiver = await openWs(t, server.url(`pipelined${index}`));
      await joined(server, `pipelined${index}`, receiver.key);
      receivers.push(receiver);
    }
    // Every sender writes its upgrade request and all its messages in one write, all senders at
    // once: the server reads messages before it has answered, while others are joining.
    const frames = [
      ...Array.from({length: MESSAGES}, (_, message) =>
        clientFrame(OPCODES.text, hashesRequest(`m${message}`)),
      ),
      clientFrame(OPCODES.text, hashesRequest('end')),
    ];
    const senders = await Promise.all(
      Array.from({length: PATHS * SENDERS_PER_PATH}, async (_, index) => {
        const path = `pipelined${index % PATHS}`;
        const client = await openTcp(t, server.port, path, {after: frames});
        return {path, key: client.key};
      }),
    );
    for (const [index, receiver] of receivers.entries()) {
      await waitFor(
        () =>
          receiver.messages.filter((message) => requestIdOf(message) === 'end')
            .length === SENDERS_PER_PATH,
        `every sender's end marker at receiver ${index}`,
      );
    }
    const expected = [
      ...Array.from({length: MESSAGES}, (_, message) => `m${message}`),
      'end',
    ];
    for (const [index, receiver] of receivers.entries()) {
      const mine = senders.filter(({path}) => path === `pipelined${index}`);
      assert.equal(receiver.messages.length, mine.length * expected.length);
      for (const sender of mine) {
        assert.deepEqual(
          receiver.messages
            .filter((message) => senderOf(message) === sender.key)
            .map(requestIdOf),
          expected,
          `${sender.key} at receiver ${index}`,
        );
      }
    }
    assert.deepEqual(server.errors, []);
  },
);

test(
  'trap 2: ws no longer listens on the socket, so Node letting go of it does not close the WebSocket',
  options,
  async (t) => {
    const server = await startNative(t);
    const peer = await openWs(t, server.url('detached'));
    const client = await openWs(t, server.url('detached'));
    const side = await server.connection(client.key);
    await released(side);
    const socket = side.request.socket;
    for (const event of ['close', 'data', 'end', 'error']) {
      assert.deepEqual(
        socket
          .listeners(event)
          .map(({name}) => name)
          .filter((name) => name.startsWith('socketOn')),
        [],
        event,
      );
    }
    const closes = [];
    side.webSocket.on('close', (code) => closes.push(code));
    // Node has closed its copy of the socket, yet the connection relays both ways.
    client.send(hashesRequest('there', peer.key));
    peer.send(hashesRequest('back', client.key));
    await waitFor(() => peer.messages.length === 1, 'the message to the peer');
    await waitFor(() => client.messages.length === 1, 'the message back');
    assert.equal(side.webSocket.readyState, WebSocket.OPEN);
    assert.ok(server.webSocketServer.clients.has(side.webSocket));
    assert.deepEqual(closes, []);
  },
);

test(
  'trap 3: frames pipelined with the upgrade request are replayed, also a frame split across the upgrade',
  options,
  async (t) => {
    const server = await startNative(t);
    const receiver = await openWs(t, server.url('pipelined'));
    await joined(server, 'pipelined', receiver.key);
    const split = clientFrame(OPCODES.text, hashesRequest('split'));
    const client = await openTcp(t, server.port, 'pipelined', {
      after: [
        clientFrame(OPCODES.text, hashesRequest('first')),
        clientFrame(OPCODES.text, hashesRequest('second')),
        split.subarray(0, 5),
      ],
    });
    assert.match(client.head, /^HTTP\/1\.1 101 /);
    await waitFor(() => receiver.messages.length === 2, 'the pipelined frames');
    client.socket.write(split.subarray(5));
    client.sendText(hashesRequest('after'));
    await waitFor(() => receiver.messages.length === 4, 'the later frames');
    assert.deepEqual(receiver.messages.map(requestIdOf), [
      'first',
      'second',
      'split',
      'after',
    ]);
    assert.ok(
      receiver.messages.every((message) => senderOf(message) === client.key),
    );
  },
);

test(
  'trap 4: the 101 response is on the wire before the first frame the server writes',
  options,
  async (t) => {
    // A persisted path: its server client asks every client for content hashes as soon as the path
    // has started, which is the earliest the server writes to a socket it has just taken over.
    const server = await startNative(t, {
      createPersisterForPath: (pathId) => createMemoryPersister({pathId}),
    });
    const client = await openTcp(t, server.port, 'early');
    const {status, headers} = parseHead(client.head);
    assert.equal(status, 'HTTP/1.1 101 Switching Protocols');
    assert.equal(headers['sec-websocket-accept'], acceptKey(client.key));
    assert.equal(headers['upgrade'].toLowerCase(), 'websocket');
    assert.equal(headers['sec-websocket-extensions'], undefined);
    await waitFor(
      () => client.texts().length > 0,
      'the server client to write',
    );
    // Whatever followed the head parsed as whole, well-formed server frames.
    const [first] = client.texts();
    assert.equal(senderOf(first), 'S');
    assert.equal(JSON.parse(first.slice(2))[1], 1);
    const side = await server.connection(client.key);
    await released(side);
    assert.equal(side.data, 0);
  },
);

test(
  'trap 5: the native plane holds the only, close-on-exec, descriptor of the connection',
  options,
  async (t) => {
    const server = await startNative(t);
    const client = await openWs(t, server.url('dup'));
    const side = await server.connection(client.key);
    await released(side);
    // The server end of the connection is the socket whose local port is the client's remote port
    // and the other way round; /proc/net/tcp names its inode.
    const hex = (port) => port.toString(16).toUpperCase().padStart(4, '0');
    const local = `0100007F:${hex(server.port)}`;
    const remote = `0100007F:${hex(client.webSocket._socket.localPort)}`;
    const row = readFileSync('/proc/net/tcp', 'utf8')
      .split('\n')
      .map((line) => line.trim().split(/\s+/))
      .find((fields) => fields[1] === local && fields[2] === remote);
    assert.ok(row, 'the server end of the connection in /proc/net/tcp');
    const inode = row[9];
    const descriptorsOf = () =>
      readdirSync('/proc/self/fd').filter((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`) === `socket:[${inode}]`;
        } catch {
          return false; // the fd of readdirSync itself, closed by now
        }
      });
    const fds = descriptorsOf();
    assert.equal(fds.length, 1, 'one descriptor of the server end');
    const flags = readFileSync(`/proc/self/fdinfo/${fds[0]}`, 'utf8').match(
      /^flags:\s+([0-7]+)$/m,
    )[1];
    const O_CLOEXEC = 0o2000000;
    assert.ok((parseInt(flags, 8) & O_CLOEXEC) !== 0, `flags ${flags}`);
    // And it goes with the connection.
    client.webSocket.close();
    await client.closed;
    await waitFor(
      () => descriptorsOf().length === 0,
      'the descriptor to close',
    );
  },
);

test(
  'trap 6: releasing Node’s socket neither half-closes nor resets the connection',
  options,
  async (t) => {
    const server = await startNative(t);
    const peer = await openWs(t, server.url('release'));
    const client = await openTcp(t, server.port, 'release');
    const side = await server.connection(client.key);
    await released(side);
    // Some more turns of the loop after the release, for a FIN or RST to have shown.
    for (let turn = 0; turn < 10; turn++) {
      await nextImmediate();
    }
    client.sendText(hashesRequest('out', peer.key));
    await waitFor(() => peer.messages.length === 1, 'the peer to receive');
    peer.send(hashesRequest('in', client.key));
    await waitFor(
      () => client.texts().length === 1,
      'the raw client to receive',
    );
    assert.equal(requestIdOf(client.texts()[0]), 'in');
    assert.equal(client.socket.readableEnded, false);
    assert.equal(client.socket.destroyed, false);
    assert.equal(side.webSocket.readyState, WebSocket.OPEN);
  },
);

test(
  'trap 7: a connection listener added after createWsServer reads the peer address, also after the release',
  options,
  async (t) => {
    const server = await startNative(t);
    const seen = [];
    server.webSocketServer.on('connection', (webSocket, request) => {
      const {socket} = request;
      const read = () => ({
        address: socket.remoteAddress,
        port: socket.remotePort,
        family: socket.remoteFamily,
        destroyed: socket.destroyed,
      });
      seen.push({now: read()});
      // Queued after the server's own release, so it runs once Node's socket is gone.
      setImmediate(() => (seen.at(-1).later = read()));
    });
    const client = await openWs(t, server.url('address'));
    await waitFor(() => seen[0]?.later, 'the later read');
    const expected = {
      address: '127.0.0.1',
      port: client.webSocket._socket.localPort,
      family: 'IPv4',
    };
    assert.deepEqual(seen, [
      {
        now: {...expected, destroyed: false},
        later: {...expected, destroyed: true},
      },
    ]);
  },
);

test('trap 8: the WebSocket facade', options, async (t) => {
  await t.test('stays in wss.clients and sends to its client', async (st) => {
    const server = await startNative(st);
    const client = await openWs(st, server.url('facade'));
    const side = await server.connection(client.key);
    await released(side);
    assert.ok(server.webSocketServer.clients.has(side.webSocket));
    assert.equal(side.webSocket.readyState, WebSocket.OPEN);
    assert.equal(typeof side.webSocket.bufferedAmount, 'number');
    const sent = [];
    side.webSocket.send('text', (error) => sent.push(error ?? 'ok'));
    side.webSocket.send(Buffer.from('buffer'));
    await waitFor(() => client.messages.length === 2, 'two facade sends');
    assert.deepEqual(client.messages, ['text', 'buffer']);
    assert.deepEqual(sent, ['ok']);
  });

  await t.test('close(4000, "bye") from the server side', async (st) => {
    const server = await startNative(st);
    const changes = [];
    server.wsServer.addClientIdsListener('bye', (_, pathId, clientId, change) =>
      changes.push([clientId, change]),
    );
    const client = await openWs(st, server.url('bye'));
    const side = await server.connection(client.key);
    await released(side);
    const closed = new Promise((resolve) =>
      side.webSocket.once('close', (code, reason) =>
        resolve({
          code,
          reason: reason.toString(),
          readyState: side.webSocket.readyState,
          inClients: server.webSocketServer.clients.has(side.webSocket),
        }),
      ),
    );
    side.webSocket.send('last');
    side.webSocket.close(4000, 'bye');
    assert.equal(side.webSocket.readyState, WebSocket.CLOSING);
    assert.deepEqual(await withTimeout(client.closed, 'the client close'), {
      code: 4000,
      reason: 'bye',
    });
    assert.deepEqual(client.messages, ['last']);
    assert.deepEqual(await withTimeout(closed, 'the facade close'), {
      code: 4000,
      reason: 'bye',
      readyState: WebSocket.CLOSED,
      inClients: false,
    });
    await waitFor(() => changes.length === 2, 'the client to leave');
    assert.deepEqual(changes, [
      [client.key, 1],
      [client.key, -1],
    ]);
    const errors = [];
    side.webSocket.send('too late', (error) => errors.push(error));
    await waitFor(() => errors.length === 1, 'the send callback');
    assert.ok(errors[0] instanceof Error);
  });

  await t.test('a close from the client side', async (st) => {
    const server = await startNative(st);
    const client = await openWs(st, server.url('client-bye'));
    const side = await server.connection(client.key);
    await released(side);
    const closed = once(side.webSocket, 'close');
    client.webSocket.close(4001, 'client bye');
    const [code, reason] = await withTimeout(closed, 'the facade close');
    assert.deepEqual([code, reason.toString()], [4001, 'client bye']);
    assert.equal(side.webSocket.readyState, WebSocket.CLOSED);
    assert.equal(server.webSocketServer.clients.has(side.webSocket), false);
    assert.deepEqual(await client.closed, {code: 4001, reason: 'client bye'});
    await waitForEqual(() => server.wsServer.getStats(), {
      paths: 0,
      clients: 0,
    });
  });

  await t.test(
    'terminate() drops the connection without a handshake',
    async (st) => {
      const server = await startNative(st);
      const client = await openWs(st, server.url('terminate'));
      const side = await server.connection(client.key);
      await released(side);
      const closed = once(side.webSocket, 'close');
      side.webSocket.terminate();
      assert.equal(side.webSocket.readyState, WebSocket.CLOSING);
      const [code, reason] = await withTimeout(closed, 'the facade close');
      assert.deepEqual([code, reason.toString()], [1006, '']);
      assert.equal(side.webSocket.readyState, WebSocket.CLOSED);
      assert.deepEqual(await withTimeout(client.closed, 'the client close'), {
        code: 1006,
        reason: '',
      });
    },
  );

  await t.test(
    'a message listener added later mirrors what arrives, until removed',
    async (st) => {
      const server = await startNative(st);
      const peer = await openWs(st, server.url('mirror'));
      const client = await openWs(st, server.url('mirror'));
      const side = await server.connection(client.key);
      await released(side);
      // Relayed to the peer, so the server has surely handled it before anything else happens.
      const relay = async (requestId) => {
        const count = peer.messages.length;
        client.send(hashesRequest(requestId));
        await waitFor(() => peer.messages.length === count + 1, requestId);
      };
      await relay('before');
      const first = [];
      const listener = (data, isBinary) =>
        first.push([
          Buffer.isBuffer(data),
          isBinary,
          requestIdOf(data.toString()),
        ]);
      side.webSocket.on('message', listener);
      await relay('while');
      await waitFor(() => first.length === 1, 'the mirrored message');
      side.webSocket.off('message', listener);
      await relay('off');
      const second = [];
      side.webSocket.on('message', (data) => second.push(data.toString()));
      await relay('again');
      await waitFor(() => second.length === 1, 'the mirrored message again');
      // The raw payload, not the relayed one: no sender prefix.
      assert.deepEqual(second, [hashesRequest('again')]);
      assert.deepEqual(first, [[true, false, 'while']]);
      assert.deepEqual(peer.messages.map(requestIdOf), [
        'before',
        'while',
        'off',
        'again',
      ]);
    },
  );
});

test(
  'trap 8: the facade’s state follows a TinyBase client through its life',
  options,
  async (t) => {
    const server = await startNative(t);
    const client = await openTinyBase(t, server.url('life'));
    const other = await openTinyBase(t, server.url('life'));
    const side = await server.connection(client.key);
    await released(side);
    assert.equal(side.webSocket.readyState, WebSocket.OPEN);
    client.store.setValue('v', 1);
    await waitForEqual(() => other.store.getValues(), {v: 1});
    const closed = once(side.webSocket, 'close');
    await client.synchronizer.destroy();
    client.webSocket.close();
    const [code] = await withTimeout(closed, 'the facade close');
    assert.equal(code, 1005);
    assert.equal(side.webSocket.readyState, WebSocket.CLOSED);
    assert.deepEqual(server.wsServer.getClientIds('life'), [other.key]);
  },
);

test(
  'trap 9: after wss.close() open native connections still relay; destroy() closes them',
  options,
  async (t) => {
    const webSocketServer = new WebSocketServer({host: '127.0.0.1', port: 0});
    await withTimeout(once(webSocketServer, 'listening'), 'listening');
    const port = webSocketServer.address().port;
    const wsServer = createWsServer(webSocketServer);
    defer(t, () =>
      withTimeout(
        wsServer.destroy().catch(() => {}),
        'destroy',
      ),
    );
    const sides = [];
    webSocketServer.on('connection', (webSocket) => sides.push(webSocket));
    const url = `ws://127.0.0.1:${port}/closing`;
    const a = await openWs(t, url);
    const b = await openWs(t, url);
    await waitFor(
      () => sides.length === 2 && sides.every((side) => side._socket.destroyed),
      'both taken over',
    );
    const facadeCloses = sides.map((side) =>
      once(side, 'close').then(([code]) => code),
    );
    // Node's sockets of taken-over connections are gone, so the http server ws made closes at once.
    const serverClosed = new Promise((resolve) =>
      webSocketServer.close(resolve),
    );
    assert.equal(
      await withTimeout(serverClosed, 'the wss.close() callback'),
      undefined,
    );
    a.send(hashesRequest('still', b.key));
    await waitFor(() => b.messages.length === 1, 'relay after wss.close()');
    await assert.rejects(openWs(t, url), {code: 'ECONNREFUSED'});
    // As TinyBase's, destroy() rejects with ws's error for a server closed already, and still
    // closes every client.
    await assert.rejects(withTimeout(wsServer.destroy(), 'destroy'), {
      message: 'The server is not running',
    });
    assert.deepEqual(
      await withTimeout(Promise.all([a.closed, b.closed]), 'clients closed'),
      [
        {code: 1005, reason: ''},
        {code: 1005, reason: ''},
      ],
    );
    assert.deepEqual(
      await withTimeout(Promise.all(facadeCloses), 'facades closed'),
      [1005, 1005],
    );
    assert.equal(webSocketServer.clients.size, 0);
  },
);

test(
  'trap 10: what was due before the peer’s Close is sent in order, then the Close is echoed',
  options,
  async (t) => {
    const server = await startNative(t);
    const closer = await openTcp(t, server.port, 'due');
    await joined(server, 'due', closer.key);
    const closerSide = await server.connection(closer.key);
    const sender = await openWs(t, server.url('due'));
    const facadeClosed = once(closerSide.webSocket, 'close');
    // The closer closes as soon as it has seen the first message, with the rest still flowing.
    let sentClose = false;
    closer.socket.on('data', () => {
      if (!sentClose && closer.texts().length > 0) {
        sentClose = true;
        closer.send(OPCODES.close, closePayload(4002, 'enough'));
      }
    });
    for (let message = 0; message < 200; message++) {
      sender.send(hashesRequest(`m${message}`, closer.key));
    }
    await withTimeout(closer.ended, 'the server to end the connection');
    const [code, reason] = await withTimeout(facadeClosed, 'the facade close');
    assert.deepEqual([code, reason.toString()], [4002, 'enough']);
    // Text frames, a prefix of what was sent and in order, then exactly one Close, the echo.
    const kinds = closer.frames.map(({opcode}) => opcode);
    const closes = kinds.filter((opcode) => opcode === OPCODES.close).length;
    assert.equal(closes, 1);
    assert.equal(kinds.at(-1), OPCODES.close);
    const echo = closer.frames.at(-1).payload;
    assert.equal(echo.readUInt16BE(0), 4002);
    const texts = closer.texts().map(requestIdOf);
    assert.deepEqual(
      texts,
      texts.map((_, index) => `m${index}`),
    );
    assert.deepEqual(server.errors, []);
  },
);

// The same calls on a taken-over socket's facade and on a socket that stays in JS (it negotiated
// permessage-deflate), which is ws itself: the facade must answer as ws does.
const facadeAndWs = async (t, path) => {
  const server = await startNative(t, {perMessageDeflate: true});
  const native = await openWs(t, server.url(path));
  const js = await openWs(t, server.url(path), {
    options: {perMessageDeflate: true},
  });
  const nativeSide = await server.connection(native.key);
  const jsSide = await server.connection(js.key);
  await released(nativeSide);
  assert.equal(
    jsSide.request.socket.destroyed,
    false,
    'the ws socket stays in JS',
  );
  return {server, native, js, nativeSide, jsSide};
};

const outcome = (webSocket, action) => {
  try {
    action(webSocket);
    return {threw: undefined, readyState: webSocket.readyState};
  } catch (error) {
    return {
      threw: `${error.constructor.name}: ${error.message}`,
      readyState: webSocket.readyState,
    };
  }
};

// Each call made on the JS-plane socket (ws itself) and on the facade must end alike; both
// sockets must still work afterwards.
const sameOutcomes = async (t, path, calls) => {
  const {native, js, nativeSide, jsSide} = await facadeAndWs(t, path);
  for (const [name, call] of Object.entries(calls)) {
    const expected = outcome(jsSide.webSocket, call);
    assert.ok(expected.threw, `ws refuses ${name}`);
    assert.deepEqual(outcome(nativeSide.webSocket, call), expected, name);
  }
  nativeSide.webSocket.send('still open');
  jsSide.webSocket.send('still open');
  await waitFor(() => native.messages.length === 1, 'the native client');
  await waitFor(() => js.messages.length === 1, 'the JS-plane client');
};

test(
  'trap 8: facade.close() throws for the codes ws refuses, and stays open',
  options,
  (t) =>
    sameOutcomes(t, 'close-codes', {
      'code 999': (webSocket) => webSocket.close(999),
      'code 1004': (webSocket) => webSocket.close(1004),
      'code 1006': (webSocket) => webSocket.close(1006),
      'a string code': (webSocket) => webSocket.close('4000'),
    }),
);

test(
  'trap 8: facade.close() throws for a reason over 123 bytes, as ws does, and stays open',
  options,
  (t) =>
    sameOutcomes(t, 'close-reason', {
      'a 124-byte reason': (webSocket) =>
        webSocket.close(4000, 'x'.repeat(124)),
    }),
);

test(
  'trap 8: facade.send() takes what ws.send() takes: numbers as text, Buffers as binary frames',
  options,
  async (t) => {
    const {native, js, nativeSide, jsSide} = await facadeAndWs(t, 'send-args');
    const received = {native: [], js: []};
    native.webSocket.on('message', (data, isBinary) =>
      received.native.push([data.toString(), isBinary]),
    );
    js.webSocket.on('message', (data, isBinary) =>
      received.js.push([data.toString(), isBinary]),
    );
    for (const side of [jsSide, nativeSide]) {
      for (const data of [
        42,
        Buffer.from('buffer'),
        new Uint8Array([0x61]),
        'text',
      ]) {
        try {
          side.webSocket.send(data);
        } catch (error) {
          side.webSocket.send(`threw ${error.constructor.name}`);
        }
      }
    }
    await waitFor(() => received.js.length === 4, 'the JS-plane client');
    await waitFor(() => received.native.length === 4, 'the native client');
    assert.deepEqual(received.js, [
      ['42', false],
      ['buffer', true],
      ['a', true],
      ['text', false],
    ]);
    assert.deepEqual(received.native, received.js);
  },
);

test(
  'trap 8: ping() on the facade is answered by a pong event, as the ws README heartbeat needs',
  options,
  async (t) => {
    const {nativeSide, jsSide} = await facadeAndWs(t, 'ping');
    const pongs = {native: [], js: []};
    jsSide.webSocket.on('pong', (data) => pongs.js.push(data.toString()));
    nativeSide.webSocket.on('pong', (data) =>
      pongs.native.push(data.toString()),
    );
    jsSide.webSocket.ping('are you there');
    nativeSide.webSocket.ping('are you there');
    await waitFor(() => pongs.js.length === 1, 'the JS-plane pong');
    await waitFor(() => pongs.native.length === 1, 'the native pong', 5_000);
    assert.deepEqual(pongs.native, pongs.js);
  },
);

test(
  'trap 8: the facade reports the close code its peer answered with, and server-side closes',
  options,
  async (t) => {
    const server = await startNative(t);
    const other = await openTcp(t, server.port, 'answers');
    const otherSide = await server.connection(other.key);
    await released(otherSide);
    const closed = once(otherSide.webSocket, 'close');
    other.socket.on('data', () => {
      if (other.frames.some(({opcode}) => opcode === OPCODES.close)) {
        other.send(OPCODES.close, closePayload(4100, 'other'));
      }
    });
    otherSide.webSocket.close(4000, 'bye');
    const [code, reason] = await withTimeout(closed, 'the facade close');
    // As ws: the 'close' event carries the code and reason of the Close frame received.
    assert.deepEqual([code, reason.toString()], [4100, 'other']);

    // A close the server decides on (an invalid message) is reported on the facade too.
    const bad = await openWs(t, server.url('answers'));
    const badSide = await server.connection(bad.key);
    const badClosed = once(badSide.webSocket, 'close');
    bad.send('no newline');
    const [badCode, badReason] = await withTimeout(
      badClosed,
      'the facade close',
    );
    assert.deepEqual([badCode, badReason.toString()], [1007, 'tinybase:14']);
    assert.deepEqual(await bad.closed, {code: 1007, reason: 'tinybase:14'});
  },
);

test(
  'trap 3: a Close pipelined with the upgrade request is honoured after the messages before it',
  options,
  async (t) => {
    const server = await startNative(t);
    const changes = [];
    server.wsServer.addClientIdsListener(
      'pipelined-close',
      (_, __, clientId, change) => changes.push([clientId, change]),
    );
    const receiver = await openWs(t, server.url('pipelined-close'));
    await joined(server, 'pipelined-close', receiver.key);
    const client = await openTcp(t, server.port, 'pipelined-close', {
      after: [
        clientFrame(OPCODES.text, hashesRequest('before close')),
        clientFrame(OPCODES.close, closePayload(4003, 'short visit')),
      ],
    });
    await waitFor(
      () => client.frames.some(({opcode}) => opcode === OPCODES.close),
      'the Close echoed',
    );
    const echo = client.frames.find(({opcode}) => opcode === OPCODES.close);
    assert.equal(echo.payload.readUInt16BE(0), 4003);
    await waitFor(
      () => receiver.messages.length === 1,
      'the message before the Close',
    );
    assert.equal(requestIdOf(receiver.messages[0]), 'before close');
    await waitFor(
      () => changes.length === 3,
      'both clients joining, one leaving',
    );
    assert.deepEqual(changes, [
      [receiver.key, 1],
      [client.key, 1],
      [client.key, -1],
    ]);
    assert.deepEqual(server.wsServer.getClientIds('pipelined-close'), [
      receiver.key,
    ]);
  },
);

// What a user's 'connection' listener, added after createWsServer as usual, sees of a client that
// pipelined frames with its upgrade request: ws reads them only after every 'connection' listener
// has run, so such a listener can still attach to everything. `frames` go after the request;
// `deflate` makes the client offer permessage-deflate, which keeps it in JS (its frames are sent
// uncompressed, which the extension allows).
const pipelinedJoin = async (t, {deflate, frames}) => {
  const server = await startNative(t, {perMessageDeflate: true});
  const path = 'pipelined-join';
  const receiver = await openWs(t, server.url(path));
  await joined(server, path, receiver.key);
  const key = randomBytes(16).toString('base64');
  // Holds createWsServer's own connection handling (which calls this listener when the client
  // joins) long enough for the plane to have read the pipelined frames: the outcome must not
  // depend on how fast the plane is.
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const changes = [];
  server.wsServer.addClientIdsListener(path, (_, __, clientId, change) => {
    if (clientId === key) {
      changes.push(change);
      if (change === 1) {
        Atomics.wait(pause, 0, 0, 200);
      }
    }
  });
  const seen = {messages: []};
  server.webSocketServer.on('connection', (webSocket, request) => {
    if (request.headers['sec-websocket-key'] === key) {
      seen.readyState = webSocket.readyState;
      webSocket.on('message', (data) => seen.messages.push(data.toString()));
      webSocket.on(
        'close',
        (code, reason) => (seen.close = [code, reason.toString()]),
      );
    }
  });
  const client = await openTcp(t, server.port, path, {
    key,
    after: frames,
    headers: deflate ? {'Sec-WebSocket-Extensions': 'permessage-deflate'} : {},
  });
  const extensions =
    parseHead(client.head).headers['sec-websocket-extensions'] ?? '';
  assert.equal(extensions.startsWith('permessage-deflate'), deflate);
  return {server, receiver, client, seen, changes};
};

const bothPlanes = [
  ['ws, in JS', true],
  ['native', false],
];

test(
  'a message pipelined with the upgrade reaches a message listener added by a later connection listener',
  options,
  async (t) => {
    for (const [plane, deflate] of bothPlanes) {
      await t.test(plane, async (st) => {
        const {receiver, seen} = await pipelinedJoin(st, {
          deflate,
          frames: [clientFrame(OPCODES.text, hashesRequest('pipelined'))],
        });
        await waitFor(() => receiver.messages.length === 1, 'the relay');
        assert.equal(seen.readyState, WebSocket.OPEN);
        // The server handled the message already; the listener had its chance in the same turn.
        await waitFor(
          () => seen.messages.length === 1,
          'the message at the listener',
          5_000,
        );
        assert.deepEqual(seen.messages, [hashesRequest('pipelined')]);
      });
    }
  },
);

test(
  'a Close pipelined with the upgrade reaches a close listener added by a later connection listener',
  options,
  async (t) => {
    for (const [plane, deflate] of bothPlanes) {
      await t.test(plane, async (st) => {
        const {seen, changes} = await pipelinedJoin(st, {
          deflate,
          frames: [
            clientFrame(OPCODES.close, closePayload(4003, 'short visit')),
          ],
        });
        await waitFor(() => changes.includes(-1), 'the client to leave');
        assert.equal(seen.readyState, WebSocket.OPEN);
        await waitFor(() => seen.close, 'the close at the listener', 5_000);
        assert.deepEqual(seen.close, [4003, 'short visit']);
      });
    }
  },
);

test(
  'trap 4: a welcome a connection listener sends before createWsServer’s arrives whole and first',
  options,
  async (t) => {
    for (const [name, size] of [
      ['a short welcome', 7],
      // Far more than the kernel takes at once, so Node still holds most of it when the server
      // decides: nothing may be written to the socket in the middle of it.
      ['a 4 MiB welcome', 4 * 1024 * 1024],
    ]) {
      await t.test(name, async (st) => {
        const server = await startNative(st);
        const welcome = 'w'.repeat(size);
        server.webSocketServer.prependListener('connection', (webSocket) =>
          webSocket.send(welcome),
        );
        const peer = await openWs(st, server.url('welcome'));
        const client = await openWs(st, server.url('welcome'));
        await waitFor(() => peer.messages.length === 1, 'the peer’s welcome');
        await joined(server, 'welcome', client.key);
        peer.send(hashesRequest('relayed', client.key));
        client.send(hashesRequest('back', peer.key));
        await waitFor(
          () => client.messages.length === 2,
          'the welcome and relayed message',
        );
        await waitFor(() => peer.messages.length === 2, 'the message back');
        assert.ok(client.messages[0] === welcome, 'the welcome first, intact');
        assert.equal(requestIdOf(client.messages[1]), 'relayed');
        assert.equal(requestIdOf(peer.messages[1]), 'back');
      });
    }
  },
);

test(
  'trap 8: a mirrored message tells text from binary, as ws does',
  options,
  async (t) => {
    const {native, js, nativeSide, jsSide} = await facadeAndWs(t, 'binary');
    const seen = {native: [], js: []};
    nativeSide.webSocket.on('message', (data, isBinary) =>
      seen.native.push([Buffer.isBuffer(data), data.toString(), isBinary]),
    );
    jsSide.webSocket.on('message', (data, isBinary) =>
      seen.js.push([Buffer.isBuffer(data), data.toString(), isBinary]),
    );
    for (const client of [native, js]) {
      client.webSocket.send(hashesRequest('text'));
      client.webSocket.send(Buffer.from(hashesRequest('binary')));
    }
    await waitFor(() => seen.js.length === 2, 'the JS-plane messages');
    await waitFor(() => seen.native.length === 2, 'the mirrored messages');
    assert.deepEqual(seen.js, [
      [true, hashesRequest('text'), false],
      [true, hashesRequest('binary'), true],
    ]);
    assert.deepEqual(seen.native, seen.js);
  },
);

test(
  'trap 8: pause() holds what the client sends until resume(), as ws does',
  options,
  async (t) => {
    const {server, native, js, nativeSide, jsSide} = await facadeAndWs(
      t,
      'pause',
    );
    const peer = await openWs(t, server.url('pause'));
    await joined(server, 'pause', peer.key);
    const planes = [
      ['ws, in JS', js, jsSide, native],
      ['native', native, nativeSide, js],
    ];
    for (const [plane, client, side, control] of planes) {
      side.webSocket.pause();
      assert.equal(side.webSocket.isPaused, true, plane);
      const before = peer.messages.length;
      client.send(hashesRequest(`held ${plane}`, peer.key));
      // Sent after the held message, on a socket that is not paused: once it has arrived the
      // held one would have had every chance to.
      control.send(hashesRequest(`control ${plane}`, peer.key));
      await waitFor(
        () => peer.messages.length === before + 1,
        `the control message (${plane})`,
      );
      assert.equal(requestIdOf(peer.messages.at(-1)), `control ${plane}`);
      side.webSocket.resume();
      assert.equal(side.webSocket.isPaused, false, plane);
      await waitFor(
        () => peer.messages.length === before + 2,
        `the held message (${plane})`,
      );
      assert.equal(requestIdOf(peer.messages.at(-1)), `held ${plane}`);
    }
  },
);
