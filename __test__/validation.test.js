import assert from 'node:assert/strict';
import {randomBytes} from 'node:crypto';
import test from 'node:test';
import {WebSocket} from 'ws';
import {
  TEST_TIMEOUT_MS,
  errorMessages,
  openClient,
  openRaw,
  parse,
  startServer,
  waitFor,
  waitForEqual,
  withTimeout,
} from './support/harness.js';
import {
  NO_WS_WEBSOCKET,
  name as implementation,
} from './support/implementation.js';

const options = {timeout: TEST_TIMEOUT_MS};
const HLC = 'P7LPBu2----yFh3x';
const MESSAGE_ID = 'Fragment-Id_0123';
const U = '\uFFFC';
const MAX_PAYLOAD = 16 * 1024 * 1024;

// Remainders (everything after the first newline) that a legacy client must
// never send; each must close its sender with 1007 and nothing else.
const INVALID = {
  'bad JSON': '[null,1,',
  'a JSON object': '{"0":null,"1":1,"2":""}',
  'a two-element array': '[null,1]',
  'a four-element array': '[null,1,"",0]',
  'a numeric request id': '[1,1,""]',
  'a fractional message type': '[null,1.5,""]',
  'a string message type': '[null,"1",""]',
  'message type 8': '[null,8,{}]',
  'the multiplex control type -1 on a legacy socket': '["r",-1,[0,1]]',
  'type 0 with a string body': '["r",0,"x"]',
  'type 0 with a one-hash body': '["r",0,[1]]',
  'type 1 with a null body': '[null,1,null]',
  'type 1 with a non-empty body': '[null,1,"x"]',
  'type 2 with one hash': '[null,2,[1]]',
  'type 2 with a negative hash': '[null,2,[1,-1]]',
  'type 2 with a hash above 32 bits': '[null,2,[1,4294967296]]',
  'type 2 with a fractional hash': '[null,2,[1,1.5]]',
  'type 2 with a string hash': '[null,2,["1",1]]',
  'type 3 with a bad third element': '[null,3,[[{},""],[{},""],2]]',
  'type 3 without values': '[null,3,[[{},""]]]',
  'type 3 with a short HLC': '[null,3,[[{},"short"],[{},""]]]',
  'type 3 with a bad HLC character': `[null,3,[[{},"${HLC.slice(0, 15)}!"],[{},""]]]`,
  'type 3 with a seventeen-character HLC': `[null,3,[[{},"${HLC}A"],[{},""]]]`,
  'type 3 with a hashed cell stamp': `[null,3,[[{"t":[{"r":[{"c":[1,"${HLC}",5]},""]},""]},""],[{},""]]]`,
  'type 3 with a numeric HLC': `[null,3,[[{},""],[{"v":[1,7]},""]]]`,
  'type 4 with a string hash': '[null,4,{"t":"x"}]',
  'type 4 with an array body': '[null,4,[]]',
  'type 5 with too shallow a tree': '[null,5,{"t":1}]',
  'type 6 with too shallow a tree': '[null,6,{"t":{"r":1}}]',
  'type 7 with too deep a tree': '[null,7,{"v":{}}]',
  'the undefined marker as request id': `["${U}",1,""]`,
  'the undefined marker as a type 1 body': `[null,1,"${U}"]`,
  'the undefined marker as a hash': `[null,2,[1,"${U}"]]`,
  'the undefined marker as message type': `[null,"${U}",""]`,
  'a fragment index equal to its total': `${MESSAGE_ID}\n2\n2\nx`,
  'a fragment total of zero': `${MESSAGE_ID}\n0\n0\nx`,
  'a fragment with a short message id': 'short\n0\n2\nx',
  'a negative fragment index': `${MESSAGE_ID}\n-1\n2\nx`,
};

// Remainders that are valid and must be relayed untouched.
const VALID = {
  'a hashes response': '["r",0,[1,2]]',
  'a values stamp response': `["r",0,[{"v":[2,"${HLC}"]},""]]`,
  'a table diff response': `["r",0,[[{"t":[{"r":[{"c":[1,"${HLC}"]},""]},""]},""],{"t":{"r":1}}]]`,
  'a content hashes request': '[null,1,""]',
  'boundary hashes': '["x",2,[0,4294967295]]',
  'a content diff with undefined markers and the changes flag': `[null,3,[[{"t":[{"r":[{"c":["${U}","${HLC}"]},""]},""]},""],[{"v":["${U}","${HLC}"]},""],1]]`,
  'object and array cells': `[null,3,[[{"t":[{"r":[{"o":[{"a":[1]},"${HLC}"],"n":[null,"${HLC}"]},""]},""]},""],[{},""]]]`,
  'a table hashes request': '[null,4,{"t":1}]',
  'a row hashes request': '[null,5,{"t":{"r":1}}]',
  'a cell hashes request': '[null,6,{"t":{"r":{"c":1}}}]',
  'a value hashes request': '[null,7,{"v":1}]',
};

// Proves, after the fact, that nothing from another client was relayed to
// `peer`: the server writes to a socket in order, so anything relayed before
// this marker would have arrived before it.
const expectNothingRelayed = async (peer) => {
  peer.send(`${peer.id}\n["marker",1,""]`);
  await peer.receive(({requestId}) => requestId === 'marker', 'peer marker');
  assert.deepEqual(peer.messages, [`${peer.id}\n["marker",1,""]`]);
};

const expectClosedAsInvalid = async (server, sender, code, message) => {
  assert.deepEqual(await withTimeout(sender.closed, 'sender to be closed'), {
    code,
    reason: message,
  });
  await waitFor(
    () => errorMessages(server.errors).includes(message),
    `'${message}' to be reported`,
  );
  const [error] = server.errors.filter((error) => error.message === message);
  assert.ok(error instanceof Error);
};

test(
  'each malformed payload closes only its sender with 1007 tinybase:14',
  options,
  async (t) => {
    const server = await startServer(t);
    const cases = [
      ['no newline at all', '[null,1,""]'],
      ...Object.entries(INVALID).map(([name, remainder]) => [
        name,
        `\n${remainder}`,
      ]),
    ];
    for (const [index, [name, sent]] of cases.entries()) {
      await t.test(name, async (st) => {
        const path = `invalid${index}`;
        const peer = await openRaw(st, server, path);
        const sender = await openRaw(st, server, path);
        const before = server.errors.length;
        sender.send(sent);
        await expectClosedAsInvalid(server, sender, 1007, 'tinybase:14');
        await waitFor(
          () => !server.wsServer.getClientIds(path).includes(sender.id),
          'sender to leave the path',
        );
        assert.equal(peer.webSocket.readyState, WebSocket.OPEN);
        assert.deepEqual(errorMessages(server.errors.slice(before)), [
          'tinybase:14',
        ]);
        await expectNothingRelayed(peer);
      });
    }
  },
);

test(
  'each valid payload is relayed verbatim and its sender stays open',
  options,
  async (t) => {
    const server = await startServer(t);
    const sender = await openRaw(t, server, 'valid');
    const peer = await openRaw(t, server, 'valid');
    const remainders = Object.values(VALID);
    for (const remainder of remainders) {
      sender.send(`\n${remainder}`);
    }
    await waitFor(
      () => peer.messages.length === remainders.length,
      'all relayed',
    );
    assert.deepEqual(
      peer.messages,
      remainders.map((remainder) => `${sender.id}\n${remainder}`),
    );
    assert.equal(sender.webSocket.readyState, WebSocket.OPEN);
    assert.deepEqual(server.errors, []);
  },
);

test(
  'an invalid client is reported once however much more it sends',
  options,
  async (t) => {
    const server = await startServer(t);
    const peer = await openRaw(t, server, 'once');
    const sender = await openRaw(t, server, 'once');
    sender.send('\nnot json');
    sender.send('\nstill not json');
    sender.send('\n[null,1,""]');
    await expectClosedAsInvalid(server, sender, 1007, 'tinybase:14');
    await expectNothingRelayed(peer);
    assert.deepEqual(errorMessages(server.errors), ['tinybase:14']);
  },
);

test(
  'real clients keep syncing while a bad client on their path is closed',
  options,
  async (t) => {
    const server = await startServer(t);
    const [client1, client2] = await Promise.all([
      openClient(t, server.url('mixed')),
      openClient(t, server.url('mixed')),
    ]);
    client1.store.setCell('t', 'r', 'c', 1);
    await waitForEqual(
      () => client2.store.getTables(),
      {t: {r: {c: 1}}},
      'first change',
    );
    const bad = await openRaw(t, server, 'mixed');
    bad.send('\n[null,2,[1,-1]]');
    await expectClosedAsInvalid(server, bad, 1007, 'tinybase:14');
    client2.store.setCell('t', 'r', 'c', 2);
    await waitForEqual(
      () => client1.store.getTables(),
      {t: {r: {c: 2}}},
      'second change',
    );
    assert.equal(server.wsServer.getClientIds('mixed').length, 2);
    assert.deepEqual(errorMessages(server.errors), ['tinybase:14']);
  },
);

test(
  'an onIgnoredError that throws does not stop the close',
  options,
  async (t) => {
    const server = await startServer(t, {
      onIgnoredError: () => {
        throw new Error('handler failure');
      },
    });
    const sender = await openRaw(t, server, 'throwing');
    sender.send('no newline');
    await expectClosedAsInvalid(server, sender, 1007, 'tinybase:14');
  },
);

test(
  'a binary frame is decoded as UTF-8 and relayed as text',
  options,
  async (t) => {
    const server = await startServer(t);
    const sender = await openRaw(t, server, 'binary');
    const peer = await openRaw(t, server, 'binary');
    sender.webSocket.send(Buffer.from('\n["bin",1,""]'), {binary: true});
    const received = await new Promise((resolve) =>
      peer.webSocket.once('message', (data, isBinary) =>
        resolve([data.toString(), isBinary]),
      ),
    );
    assert.deepEqual(received, [`${sender.id}\n["bin",1,""]`, false]);
  },
);

test(
  'a text frame of invalid UTF-8 is closed with 1007 and its error reported',
  options,
  async (t) => {
    const server = await startServer(t);
    const sender = await openRaw(t, server, 'utf8');
    sender.webSocket.send(Buffer.from([0x0a, 0xff, 0xfe]), {binary: false});
    const {code} = await withTimeout(sender.closed, 'sender to be closed');
    assert.equal(code, 1007);
    await waitFor(
      () => server.errors.length === 1,
      'the socket error to be reported',
    );
    assert.equal(server.errors[0].code, 'WS_ERR_INVALID_UTF8');
    await waitFor(
      () => server.wsServer.getClientIds('utf8').length === 0,
      'sender to leave the path',
    );
  },
);

// A client's Close frame (masked) carrying `code`, written past the client's own framing, which
// refuses to send a code like these.
const rawClose = (code, reason = '') => {
  const payload = Buffer.concat([Buffer.alloc(2), Buffer.from(reason)]);
  payload.writeUInt16BE(code);
  const mask = randomBytes(4);
  const masked = payload.map((byte, index) => byte ^ mask[index % 4]);
  return Buffer.concat([
    Buffer.from([0x88, 0x80 | payload.length]),
    mask,
    masked,
  ]);
};

// The client options that put the server's side of a connection on each plane of the native
// server: a socket that negotiates permessage-deflate stays in JS, one that does not is taken over.
const PLANES = {
  native: {perMessageDeflate: false},
  js: {perMessageDeflate: true},
};

// A server whose clients choose their plane, and what its side of each connection saw: its
// plane (native server only), its errors and its close. `connect` opens a raw client on
// `plane` and returns it with its server side, checked to be on that plane.
const startWatched = async (t, plane) => {
  const server = await startServer(t, {options: {perMessageDeflate: true}});
  const getConnectionPlane =
    implementation !== 'reference'
      ? (await import('../index.js')).getConnectionPlane
      : undefined;
  const serverSides = [];
  server.webSocketServer.on('connection', (webSocket) => {
    const side = {plane: getConnectionPlane?.(webSocket)?.plane, errors: []};
    webSocket.on('error', (error) => side.errors.push(error));
    webSocket.on('close', (code, reason) => {
      side.closed = {code, reason: reason.toString()};
    });
    serverSides.push(side);
  });
  const connect = async (st, path) => {
    const sender = await openRaw(st, server, path, {options: PLANES[plane]});
    const side = serverSides.at(-1);
    if (getConnectionPlane) {
      assert.equal(side.plane, plane);
    }
    return {sender, side};
  };
  return {server, connect};
};

for (const plane of Object.keys(PLANES)) {
  test(
    `${plane} plane: a Close with a status ws refuses fails the connection as ws does`,
    // Only the JS plane's connections are ws's with nativeUpgrade.
    {...options, skip: plane == 'native' && NO_WS_WEBSOCKET},
    async (t) => {
      const {server, connect} = await startWatched(t, plane);
      for (const code of [999, 1004, 1005, 1006, 1015, 2999, 5000]) {
        await t.test(String(code), async (st) => {
          const path = `close${code}`;
          const before = server.errors.length;
          const {sender, side} = await connect(st, path);
          sender.webSocket._socket.write(rawClose(code));
          assert.deepEqual(
            await withTimeout(sender.closed, 'sender to be closed'),
            {code: 1002, reason: ''},
          );
          await waitFor(
            () => server.errors.length > before,
            'the socket error to be reported',
          );
          const [error, ...more] = server.errors.slice(before);
          assert.deepEqual(more, []);
          assert.ok(error instanceof RangeError);
          assert.equal(error.code, 'WS_ERR_INVALID_CLOSE_CODE');
          assert.equal(
            error.message,
            `Invalid WebSocket frame: invalid status code ${code}`,
          );
          await waitFor(
            () => side.closed !== undefined,
            "the server's side to close",
          );
          assert.deepEqual(side.closed, {code: 1006, reason: ''});
          await waitFor(
            () => server.wsServer.getClientIds(path).length === 0,
            'sender to leave the path',
          );
        });
      }
    },
  );
}

// ws takes 1014 ("Bad Gateway") from a peer, where tungstenite would answer and report it as
// 1002 "Protocol violation".
for (const plane of Object.keys(PLANES)) {
  test(
    `${plane} plane: a Close with 1014 is answered and reported with its status and reason`,
    // Only the JS plane's connections are ws's with nativeUpgrade.
    {...options, skip: plane == 'native' && NO_WS_WEBSOCKET},
    async (t) => {
      const {server, connect} = await startWatched(t, plane);
      const reason = 'Bad Gateway: upstream é';
      // Written raw, the client answers the echo as a Close it did not start; sent with ws's
      // own close(), it takes the echo as the reply.
      const SENDS = {
        'raw frame': (webSocket) =>
          webSocket._socket.write(rawClose(1014, reason)),
        'close()': (webSocket) => webSocket.close(1014, reason),
      };
      for (const [how, send] of Object.entries(SENDS)) {
        await t.test(how, async (st) => {
          const path = `close1014-${how.replace(/\W/g, '')}`;
          const before = server.errors.length;
          const {sender, side} = await connect(st, path);
          send(sender.webSocket);
          assert.deepEqual(
            await withTimeout(sender.closed, 'sender to be closed'),
            {code: 1014, reason},
          );
          await waitFor(
            () => side.closed !== undefined,
            "the server's side to close",
          );
          assert.deepEqual(side.closed, {code: 1014, reason});
          await waitFor(
            () => server.wsServer.getClientIds(path).length === 0,
            'sender to leave the path',
          );
          assert.deepEqual(side.errors, []);
          assert.deepEqual(server.errors.slice(before), []);
        });
      }
    },
  );
}

test(
  'a payload of exactly 16 MiB is size-checked as allowed',
  options,
  async (t) => {
    const server = await startServer(t);
    const sender = await openRaw(t, server, 'exact');
    // Allowed by size, so the failure is the content: 1007, not 1013.
    sender.send(`\n${'x'.repeat(MAX_PAYLOAD - 1)}`);
    await expectClosedAsInvalid(server, sender, 1007, 'tinybase:14');
  },
);

test(
  'a payload over 16 MiB closes with 1013 tinybase:15:socket',
  options,
  async (t) => {
    const server = await startServer(t);
    const peer = await openRaw(t, server, 'oversize');
    const sender = await openRaw(t, server, 'oversize');
    sender.send(`\n${'x'.repeat(MAX_PAYLOAD)}`);
    await expectClosedAsInvalid(server, sender, 1013, 'tinybase:15:socket');
    await expectNothingRelayed(peer);
    assert.deepEqual(errorMessages(server.errors), ['tinybase:15:socket']);
  },
);

test(
  'the 16 MiB limit counts UTF-8 bytes, not characters',
  options,
  async (t) => {
    const server = await startServer(t);
    const sender = await openRaw(t, server, 'bytes');
    // 8 Mi two-byte characters plus the newline: one byte over.
    sender.send(`\n${'é'.repeat(MAX_PAYLOAD / 2)}`);
    await expectClosedAsInvalid(server, sender, 1013, 'tinybase:15:socket');
  },
);

test(
  'an oversize payload shaped like a fragment closes with tinybase:15:fragments',
  options,
  async (t) => {
    const server = await startServer(t);
    const sender = await openRaw(t, server, 'bigfragment');
    sender.send(`\n${MESSAGE_ID}\n0\n2\n${'x'.repeat(MAX_PAYLOAD)}`);
    await expectClosedAsInvalid(server, sender, 1013, 'tinybase:15:fragments');
  },
);

test(
  'pending fragments adding up to over 16 MiB close with tinybase:15:fragments',
  options,
  async (t) => {
    const server = await startServer(t);
    const sender = await openRaw(t, server, 'manyfragments');
    const half = 'x'.repeat(MAX_PAYLOAD / 2);
    sender.send(`\nFirst-Message-Id\n0\n2\n${half}`);
    sender.send(`\nOther-Message-Id\n0\n2\n${half}`);
    await expectClosedAsInvalid(server, sender, 1013, 'tinybase:15:fragments');
  },
);

test(
  'a fragment total of 1000 is accepted and 1001 closes with tinybase:15:fragments',
  options,
  async (t) => {
    const server = await startServer(t);
    const accepted = await openRaw(t, server, 'total');
    accepted.send(`\n${MESSAGE_ID}\n0\n1000\nx`);
    await expectNothingRelayed(accepted);

    const refused = await openRaw(t, server, 'total');
    refused.send(`\n${MESSAGE_ID}\n0\n1001\nx`);
    await expectClosedAsInvalid(server, refused, 1013, 'tinybase:15:fragments');
    assert.equal(accepted.webSocket.readyState, WebSocket.OPEN);
  },
);

test(
  '100 pending fragment groups are accepted and one more closes with tinybase:15:fragments',
  options,
  async (t) => {
    const server = await startServer(t, {requestTimeoutSeconds: 600});
    const sender = await openRaw(t, server, 'groups');
    const groupId = (index) => `Group-${String(index).padStart(10, '0')}`;
    const firstHalf = (index) => `\n${groupId(index)}\n0\n2\n[null,1,`;
    for (let index = 0; index < 100; index++) {
      sender.send(firstHalf(index));
    }
    await expectNothingRelayed(sender);

    // Completing a group frees its slot for a new one.
    sender.send(`\n${groupId(0)}\n1\n2\n""]`);
    sender.send(firstHalf(100));
    sender.messages.length = 0;
    await expectNothingRelayed(sender);

    sender.send(firstHalf(101));
    await expectClosedAsInvalid(server, sender, 1013, 'tinybase:15:fragments');
  },
);
