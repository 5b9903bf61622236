import assert from 'node:assert/strict';
import {once} from 'node:events';
import test from 'node:test';
import {WebSocket} from 'ws';
import {
  TEST_TIMEOUT_MS,
  closeOf,
  defer,
  openClient,
  openRaw,
  parse,
  payload,
  plain,
  startServer,
  waitFor,
  waitForEqual,
} from './support/harness.js';

const options = {timeout: TEST_TIMEOUT_MS};
const PETS = {pets: {fido: {species: 'dog'}, felix: {species: 'cat'}}};

test(
  'two clients on one path converge, then keep exchanging changes',
  options,
  async (t) => {
    const server = await startServer(t);
    const [client1, client2] = await Promise.all([
      openClient(t, server.url('petShop')),
      openClient(t, server.url('petShop')),
    ]);
    client1.store.setCell('pets', 'fido', 'species', 'dog');
    client2.store.setCell('pets', 'felix', 'species', 'cat');
    await waitForEqual(
      () => client1.store.getTables(),
      PETS,
      'client 1 to converge',
    );
    await waitForEqual(
      () => client2.store.getTables(),
      PETS,
      'client 2 to converge',
    );

    client2.store.setValue('open', true);
    client1.store.delRow('pets', 'felix');
    const expected = [{pets: {fido: {species: 'dog'}}}, {open: true}];
    await waitForEqual(
      () => client1.store.getContent(),
      expected,
      'client 1 content',
    );
    await waitForEqual(
      () => client2.store.getContent(),
      expected,
      'client 2 content',
    );
    assert.deepEqual(server.errors, []);
  },
);

test('clients started one after another converge', options, async (t) => {
  const server = await startServer(t);
  const client1 = await openClient(t, server.url('petShop'));
  client1.store.setCell('pets', 'fido', 'species', 'dog');
  const client2 = await openClient(t, server.url('petShop'));
  client2.store.setCell('pets', 'felix', 'species', 'cat');
  await waitForEqual(
    () => client1.store.getTables(),
    PETS,
    'client 1 to converge',
  );
  await waitForEqual(
    () => client2.store.getTables(),
    PETS,
    'client 2 to converge',
  );
});

test('three clients converge on one path', options, async (t) => {
  const server = await startServer(t);
  const clients = await Promise.all(
    [0, 1, 2].map(() => openClient(t, server.url('shared/three'))),
  );
  clients.forEach(({store}, index) =>
    store.setCell('t', `r${index}`, 'c', index),
  );
  const expected = {t: {r0: {c: 0}, r1: {c: 1}, r2: {c: 2}}};
  for (const [index, {store}] of clients.entries()) {
    await waitForEqual(() => store.getTables(), expected, `client ${index}`);
  }
  assert.deepEqual(server.wsServer.getClientIds('shared/three').length, 3);
});

test('paths are isolated from each other', options, async (t) => {
  const server = await startServer(t);
  const [a1, a2, b1, b2] = await Promise.all([
    openClient(t, server.url('a')),
    openClient(t, server.url('a')),
    openClient(t, server.url('b')),
    openClient(t, server.url('b')),
  ]);
  a1.store.setCell('t', 'r', 'from', 'a');
  b1.store.setCell('t', 'r', 'from', 'b');
  await waitForEqual(() => a2.store.getTables(), {t: {r: {from: 'a'}}}, 'a2');
  await waitForEqual(() => b2.store.getTables(), {t: {r: {from: 'b'}}}, 'b2');
  // A later change on b must reach b's peer but never path a.
  b2.store.setValue('only', 'b');
  await waitForEqual(() => b1.store.getValues(), {only: 'b'}, 'b1 value');
  assert.deepEqual(plain(a1.store.getContent()), [{t: {r: {from: 'a'}}}, {}]);
  assert.deepEqual(plain(a2.store.getContent()), [{t: {r: {from: 'a'}}}, {}]);
  assert.deepEqual(server.wsServer.getPathIds().sort(), ['a', 'b']);
});

test('raw traffic on one path never reaches another', options, async (t) => {
  const server = await startServer(t);
  const x = await openRaw(t, server, 'x');
  const y = await openRaw(t, server, 'y');
  const z = await openRaw(t, server, 'x');
  x.send(payload('', 'ping', 2, [1, 2]));
  await z.receive(({from}) => from === x.id, 'z to receive from x');
  y.send(payload('', 'pong', 2, [3, 4]));
  // y is alone on its path, so nothing may reach it, and x and z never see y.
  x.send(payload(z.id, 'marker', 2, [5, 6]));
  await z.receive(({requestId}) => requestId === 'marker', 'marker at z');
  assert.deepEqual(y.messages, []);
  assert.ok(z.messages.every((message) => parse(message).from === x.id));
  assert.deepEqual(x.messages, []);
});

test(
  'a direct message reaches only its target, sender id prefixed',
  options,
  async (t) => {
    const server = await startServer(t);
    const a = await openRaw(t, server, 'direct');
    const b = await openRaw(t, server, 'direct');
    const c = await openRaw(t, server, 'direct');
    a.send(payload(b.id, 'req1', 1, ''));
    const atB = await b.receive(
      ({requestId}) => requestId === 'req1',
      'b to receive',
    );
    assert.equal(atB.from, a.id);
    assert.equal(b.messages[0], `${a.id}\n["req1",1,""]`);

    // Same sender, later message, broadcast: c sees it, and nothing before it.
    a.send(payload('', 'after', 1, ''));
    await c.receive(
      ({requestId}) => requestId === 'after',
      'c to receive broadcast',
    );
    assert.deepEqual(c.messages, [`${a.id}\n["after",1,""]`]);
    assert.deepEqual(a.messages, []);
    assert.deepEqual(server.errors, []);
  },
);

test(
  'the remainder is relayed byte for byte, not re-serialised',
  options,
  async (t) => {
    const server = await startServer(t);
    const a = await openRaw(t, server, 'bytes');
    const b = await openRaw(t, server, 'bytes');
    const remainder = '[ "r\\u0041" , 2 ,\n [ 1 , 2 ] ]';
    a.send(`\n${remainder}`);
    await waitFor(() => b.messages.length === 1, 'b to receive');
    assert.equal(b.messages[0], `${a.id}\n${remainder}`);
  },
);

test(
  'messages to an unknown client or to the absent server client are dropped quietly',
  options,
  async (t) => {
    const server = await startServer(t);
    const a = await openRaw(t, server, 'drop');
    const b = await openRaw(t, server, 'drop');
    a.send(payload('nobody', 'lost', 1, ''));
    a.send(payload('S', 'toServer', 1, ''));
    a.send(payload(b.id, 'found', 1, ''));
    await b.receive(({requestId}) => requestId === 'found', 'b to receive');
    assert.deepEqual(
      b.messages.map((message) => parse(message).requestId),
      ['found'],
    );
    assert.equal(a.webSocket.readyState, WebSocket.OPEN);
    assert.deepEqual(server.errors, []);
  },
);

test(
  'a client may address itself directly and gets its own message back',
  options,
  async (t) => {
    const server = await startServer(t);
    const a = await openRaw(t, server, 'self');
    a.send(payload(a.id, 'mirror', 1, ''));
    const back = await a.receive(
      ({requestId}) => requestId === 'mirror',
      'self-addressed message',
    );
    assert.equal(back.from, a.id);
  },
);

test('a broadcast is not echoed to its sender', options, async (t) => {
  const server = await startServer(t);
  const a = await openRaw(t, server, 'echo');
  const b = await openRaw(t, server, 'echo');
  a.send(payload('', 'one', 2, [1, 1]));
  a.send(payload('', 'two', 2, [2, 2]));
  await b.receive(({requestId}) => requestId === 'two', 'b to receive both');
  b.send(payload('', 'reply', 2, [3, 3]));
  await a.receive(({requestId}) => requestId === 'reply', 'a to receive reply');
  assert.deepEqual(
    a.messages.map((message) => parse(message).from),
    [b.id],
  );
  assert.deepEqual(
    b.messages.map((message) => parse(message).requestId),
    ['one', 'two'],
  );
});

test(
  'a client joining later receives what the others wrote',
  options,
  async (t) => {
    const server = await startServer(t);
    const [client1, client2] = await Promise.all([
      openClient(t, server.url('late')),
      openClient(t, server.url('late')),
    ]);
    client1.store.setCell('pets', 'fido', 'species', 'dog');
    client2.store.setCell('pets', 'felix', 'species', 'cat');
    await waitForEqual(() => client2.store.getTables(), PETS, 'early clients');
    await waitForEqual(() => client1.store.getTables(), PETS, 'early clients');

    const client3 = await openClient(t, server.url('late'));
    await waitForEqual(() => client3.store.getTables(), PETS, 'late client');
  },
);

test(
  'messages sent in the same tick as open arrive, in order',
  options,
  async (t) => {
    const server = await startServer(t);
    const receiver = await openRaw(t, server, 'eager');
    const webSocket = new WebSocket(server.url('eager'));
    defer(t, async () => {
      if (webSocket.readyState !== WebSocket.CLOSED) {
        const closed = closeOf(webSocket);
        webSocket.close();
        await closed;
      }
    });
    webSocket.on('open', () => {
      for (let index = 0; index < 5; index++) {
        webSocket.send(payload('', `eager${index}`, 1, ''));
      }
    });
    await once(webSocket, 'open');
    await waitFor(() => receiver.messages.length === 5, 'five eager messages');
    assert.deepEqual(
      receiver.messages.map((message) => parse(message).requestId),
      ['eager0', 'eager1', 'eager2', 'eager3', 'eager4'],
    );
    const [sender] = server.wsServer
      .getClientIds('eager')
      .filter((clientId) => clientId !== receiver.id);
    assert.ok(
      receiver.messages.every((message) => parse(message).from === sender),
    );
  },
);

test(
  'a client that writes before starting sync converges',
  options,
  async (t) => {
    const server = await startServer(t);
    const early = await openClient(t, server.url('tick'));
    early.store.setCell('t', 'r', 'c', 'early');
    const late = await openClient(t, server.url('tick'), {start: false});
    late.store.setCell('t', 'r2', 'c', 'late');
    await late.synchronizer.startSync();
    const expected = {t: {r: {c: 'early'}, r2: {c: 'late'}}};
    await waitForEqual(() => early.store.getTables(), expected, 'early client');
    await waitForEqual(() => late.store.getTables(), expected, 'late client');
  },
);
