import assert from 'node:assert/strict';
import test from 'node:test';
import {WebSocket} from 'ws';
import {
  TEST_TIMEOUT_MS,
  errorMessages,
  gate,
  defer,
  openClient,
  openRaw,
  openRawMultiplex,
  payload,
  plain,
  startServer,
  waitFor,
  waitForEqual,
  withTimeout,
} from './support/harness.js';
import {createMemoryPersister} from './support/persisters.js';

const options = {timeout: TEST_TIMEOUT_MS};

const control = (requestId, controlType, body) =>
  `S\n${JSON.stringify([requestId, -1, [controlType, body]])}`;

const expectClosed = async (server, raw, code, reason) => {
  assert.deepEqual(await withTimeout(raw.closed, 'the socket to be closed'), {
    code,
    reason,
  });
  await waitFor(
    () => errorMessages(server.errors).includes(reason),
    `'${reason}' reported`,
  );
};

test(
  'two stores share one socket as channels, alongside legacy clients of the same paths',
  options,
  async (t) => {
    const server = await startServer(t);
    const pets = await openClient(t, server.url('shop'), {channelId: 'pets'});
    const toys = await openClient(t, server.url('shop'), {
      channelId: 'toys',
      webSocket: pets.webSocket,
    });
    assert.equal(pets.webSocket.protocol, 'tinybase');
    const [legacyPets, legacyToys] = await Promise.all([
      openClient(t, server.url('shop/pets')),
      openClient(t, server.url('shop/toys')),
    ]);
    pets.store.setCell('pets', 'fido', 'species', 'dog');
    legacyPets.store.setCell('pets', 'felix', 'species', 'cat');
    toys.store.setValue('ball', 'red');
    legacyToys.store.setValue('kite', 'blue');
    const bothPets = {pets: {fido: {species: 'dog'}, felix: {species: 'cat'}}};
    const bothToys = {ball: 'red', kite: 'blue'};
    await waitForEqual(
      () => pets.store.getTables(),
      bothPets,
      'multiplexed pets',
    );
    await waitForEqual(
      () => legacyPets.store.getTables(),
      bothPets,
      'legacy pets',
    );
    await waitForEqual(
      () => toys.store.getValues(),
      bothToys,
      'multiplexed toys',
    );
    await waitForEqual(
      () => legacyToys.store.getValues(),
      bothToys,
      'legacy toys',
    );
    assert.deepEqual(plain(pets.store.getValues()), {});
    assert.deepEqual(plain(toys.store.getTables()), {});

    assert.deepEqual(server.wsServer.getPathIds().sort(), [
      'shop/pets',
      'shop/toys',
    ]);
    assert.deepEqual(server.wsServer.getStats(), {paths: 2, clients: 4});
    const [multiplexedId] = server.wsServer.getClientIds('shop/pets');
    assert.ok(
      server.wsServer.getClientIds('shop/toys').includes(multiplexedId),
    );
  },
);

test(
  'destroying one channel unsubscribes it; a new synchronizer resubscribes',
  options,
  async (t) => {
    const server = await startServer(t);
    const first = await openClient(t, server.url(), {channelId: 'one'});
    const second = await openClient(t, server.url(), {
      channelId: 'two',
      webSocket: first.webSocket,
    });
    const [multiplexedId] = server.wsServer.getClientIds('two');
    assert.deepEqual(server.wsServer.getClientIds('one'), [multiplexedId]);

    await first.synchronizer.destroy();
    await waitForEqual(
      () => server.wsServer.getPathIds(),
      ['two'],
      'the channel to leave its path',
    );
    assert.equal(first.webSocket.readyState, WebSocket.OPEN);
    assert.deepEqual(server.wsServer.getClientIds('two'), [multiplexedId]);

    // The peer only joins once the channel is gone: TinyBase's client closes
    // the whole socket if traffic for a channel it has just dropped arrives.
    const peer = await openClient(t, server.url('one'));
    peer.store.setValue('v', 'while away');
    const again = await openClient(t, server.url(), {
      channelId: 'one',
      webSocket: first.webSocket,
    });
    await waitForEqual(
      () => again.store.getValues(),
      {v: 'while away'},
      'resubscribed channel',
    );
    assert.ok(server.wsServer.getClientIds('one').includes(multiplexedId));
    second.store.setValue('still', 'there');
    assert.deepEqual(server.wsServer.getClientIds('two'), [multiplexedId]);
    assert.equal(first.webSocket.readyState, WebSocket.OPEN);
  },
);

test(
  'the path id joins the base path and the channel id',
  options,
  async (t) => {
    const server = await startServer(t);
    const atRoot = await openRawMultiplex(t, server);
    await atRoot.hello();
    await atRoot.subscribe('x');
    await atRoot.subscribe('y/z');
    const nested = await openRawMultiplex(t, server, 'a/b');
    await nested.hello();
    await nested.subscribe('c/d');
    assert.deepEqual(server.wsServer.getPathIds().sort(), [
      'a/b/c/d',
      'x',
      'y/z',
    ]);
    assert.deepEqual(server.wsServer.getClientIds('x'), [atRoot.id]);
    assert.deepEqual(server.wsServer.getClientIds('y/z'), [atRoot.id]);
    assert.deepEqual(server.wsServer.getClientIds('a/b/c/d'), [nested.id]);
  },
);

test(
  'controls are echoed: hello, subscribe (also when repeated); unsubscribe is silent',
  options,
  async (t) => {
    const server = await startServer(t);
    const events = [];
    server.wsServer.addClientIdsListener(null, (_, pathId, __, change) =>
      events.push([pathId, change]),
    );
    const raw = await openRawMultiplex(t, server);
    assert.deepEqual((await raw.hello()).remainder, '["control0",-1,[0,1]]');
    assert.deepEqual(
      (await raw.subscribe('c')).remainder,
      '["control1",-1,[1,"c"]]',
    );
    assert.deepEqual(
      (await raw.subscribe('c')).remainder,
      '["control2",-1,[1,"c"]]',
    );
    assert.deepEqual(server.wsServer.getClientIds('c'), [raw.id]);
    raw.unsubscribe('c');
    raw.unsubscribe('never');
    await waitFor(
      () => server.wsServer.getClientIds('c').length === 0,
      'unsubscribed',
    );
    await raw.subscribe('c');
    assert.deepEqual(server.wsServer.getClientIds('c'), [raw.id]);
    assert.deepEqual(events, [
      ['c', 1],
      ['c', -1],
      ['c', 1],
    ]);
    assert.equal(raw.messages.length, 4);
    assert.deepEqual(server.errors, []);
  },
);

test(
  'channel traffic is relayed between multiplexed and legacy clients of a path',
  options,
  async (t) => {
    const server = await startServer(t);
    const mux = await openRawMultiplex(t, server, 'base');
    await mux.hello();
    await mux.subscribe('room');
    await mux.subscribe('other');
    const legacy = await openRaw(t, server, 'base/room');

    legacy.send(payload('', 'fromLegacy', 1, ''));
    const atMux = await mux.receiveOn(
      'room',
      ({requestId}) => requestId === 'fromLegacy',
      'legacy to mux',
    );
    assert.equal(atMux.from, legacy.id);
    assert.ok(
      mux.messages.includes(`M\nroom\n${legacy.id}\n["fromLegacy",1,""]`),
    );

    mux.sendOn('room', payload('', 'fromMux', 1, ''));
    mux.sendOn('room', payload(legacy.id, 'direct', 1, ''));
    await legacy.receive(
      ({requestId}) => requestId === 'direct',
      'mux to legacy',
    );
    assert.deepEqual(legacy.messages, [
      `${mux.id}\n["fromMux",1,""]`,
      `${mux.id}\n["direct",1,""]`,
    ]);
    // A broadcast is not echoed back, not even on another channel.
    mux.sendOn('other', payload(mux.id, 'marker', 1, ''));
    await mux.receiveOn(
      'other',
      ({requestId}) => requestId === 'marker',
      'marker',
    );
    assert.deepEqual(
      mux.onChannel('room').map(({requestId}) => requestId),
      ['fromLegacy'],
    );
    assert.deepEqual(
      mux.onChannel('other').map(({requestId}) => requestId),
      ['marker'],
    );
  },
);

test(
  'closing a multiplexed socket removes it from every path',
  options,
  async (t) => {
    const server = await startServer(t);
    const mux = await openRawMultiplex(t, server);
    await mux.hello();
    await mux.subscribe('p1');
    await mux.subscribe('p2');
    const stay = await openRaw(t, server, 'p1');
    mux.webSocket.close();
    await waitForEqual(() => server.wsServer.getPathIds(), ['p1'], 'p2 to go');
    assert.deepEqual(server.wsServer.getClientIds('p1'), [stay.id]);
  },
);

test('a multiplexed client syncs with a persisted path', options, async (t) => {
  const storage = new Map();
  const server = await startServer(t, {
    createPersisterForPath: (pathId) =>
      createMemoryPersister({pathId, storage}),
  });
  const client = await openClient(t, server.url('base'), {channelId: 'saved'});
  client.store.setValue('kept', true);
  await waitFor(
    () => storage.get('base/saved')?.[1]?.[0]?.kept,
    'the value to be saved',
  );
  await client.synchronizer.destroy();
  const later = await openClient(t, server.url('base'), {channelId: 'saved'});
  await waitForEqual(
    () => later.store.getValues(),
    {kept: true},
    'the saved value',
  );
});

test(
  'a subscribe before hello is ignored, and that channel then refused',
  options,
  async (t) => {
    const server = await startServer(t);
    const raw = await openRawMultiplex(t, server);
    raw.send(control('early', 1, 'c'));
    await raw.hello();
    assert.deepEqual(raw.messages, ['S\n["control0",-1,[0,1]]']);
    assert.deepEqual(server.wsServer.getClientIds('c'), []);
    raw.sendOn('c', payload('', 'x', 1, ''));
    await expectClosed(server, raw, 1007, 'tinybase:14');
  },
);

const INVALID_MULTIPLEX = {
  'channel traffic before hello': [false, 'M\nc\n\n[null,1,""]'],
  'hello of version 2': [false, control('h', 0, 2)],
  'hello without a request id': [false, control(null, 0, 1)],
  'a legacy payload': [false, '\n[null,1,""]'],
  'no newline': [false, 'S'],
  'an unknown control': [true, control('x', 3, 'c')],
  'subscribe without a request id': [true, control(null, 1, 'c')],
  'unsubscribe with a request id': [true, control('x', 2, 'c')],
  'a numeric channel id': [true, control('x', 1, 7)],
  'an empty channel id': [true, control('x', 1, '')],
  'an empty channel segment': [true, control('x', 1, 'a//b')],
  'a leading slash': [true, control('x', 1, '/a')],
  'a trailing slash': [true, control('x', 1, 'a/')],
  'a dot segment': [true, control('x', 1, 'a/./b')],
  'a dot-dot segment': [true, control('x', 1, '../b')],
  'a question mark': [true, control('x', 1, 'a?b')],
  'a hash': [true, control('x', 1, 'a#b')],
  'a line break': [true, control('x', 1, 'a\nb')],
  'a carriage return': [true, control('x', 1, 'a\rb')],
  'traffic on an unsubscribed channel': [true, 'M\nnope\n\n[null,1,""]'],
  'a channel payload without a newline': [true, 'M\nc\nno newline'],
  'a channel payload of bad JSON': [true, 'M\nc\n\n[null,1'],
  'a channel payload with a bad body': [true, 'M\nc\n\n[null,2,[1,-1]]'],
  'a frame addressed neither to S nor M': [true, 'X\nc\n\n[null,1,""]'],
};

test(
  'each malformed multiplexed payload closes the socket with 1007 tinybase:14',
  options,
  async (t) => {
    const server = await startServer(t);
    for (const [name, [afterSubscribe, sent]] of Object.entries(
      INVALID_MULTIPLEX,
    )) {
      await t.test(name, async (st) => {
        const raw = await openRawMultiplex(st, server);
        if (afterSubscribe) {
          await raw.hello();
          await raw.subscribe('c');
        }
        const before = server.errors.length;
        raw.send(sent);
        await expectClosed(server, raw, 1007, 'tinybase:14');
        assert.deepEqual(errorMessages(server.errors.slice(before)), [
          'tinybase:14',
        ]);
        await waitFor(
          () => server.wsServer.getClientIds('c').length === 0,
          'the channel to go',
        );
      });
    }
  },
);

test(
  'a channel id of 1024 bytes is accepted and of 1025 bytes closes with tinybase:15:channels',
  options,
  async (t) => {
    const server = await startServer(t);
    const accepted = await openRawMultiplex(t, server);
    await accepted.hello();
    await accepted.subscribe('é'.repeat(512));
    assert.deepEqual(server.wsServer.getClientIds('é'.repeat(512)), [
      accepted.id,
    ]);

    const bySubscribe = await openRawMultiplex(t, server);
    await bySubscribe.hello();
    bySubscribe.send(control('big', 1, `${'é'.repeat(512)}x`));
    await expectClosed(server, bySubscribe, 1013, 'tinybase:15:channels');

    const byUnsubscribe = await openRawMultiplex(t, server);
    await byUnsubscribe.hello();
    byUnsubscribe.unsubscribe('x'.repeat(1025));
    await expectClosed(server, byUnsubscribe, 1013, 'tinybase:15:channels');

    const byTraffic = await openRawMultiplex(t, server);
    await byTraffic.hello();
    byTraffic.sendOn('x'.repeat(1025), payload('', 'big', 1, ''));
    await expectClosed(server, byTraffic, 1013, 'tinybase:15:channels');
    assert.equal(accepted.webSocket.readyState, WebSocket.OPEN);
  },
);

test(
  '100 channels are accepted and the 101st closes with tinybase:15:channels',
  options,
  async (t) => {
    const server = await startServer(t);
    const raw = await openRawMultiplex(t, server);
    await raw.hello();
    for (let index = 0; index < 100; index++) {
      await raw.subscribe(`c${index}`);
    }
    // Freeing a channel makes room again; re-subscribing a held one needs none.
    raw.unsubscribe('c0');
    await raw.subscribe('replacement');
    await raw.subscribe('c1');
    assert.equal(server.wsServer.getStats().clients, 100);
    raw.send(control('over', 1, 'one-too-many'));
    await expectClosed(server, raw, 1013, 'tinybase:15:channels');
  },
);

test(
  'channels still tearing down count towards a limit of 200 resources',
  options,
  async (t) => {
    const configuring = gate();
    const server = await startServer(t, {
      createPersisterForPath: () => configuring.promise,
    });
    defer(t, () => configuring.open());
    const raw = await openRawMultiplex(t, server);
    await raw.hello();
    for (let index = 0; index < 100; index++) {
      await raw.subscribe(`first${index}`);
    }
    for (let index = 0; index < 100; index++) {
      raw.unsubscribe(`first${index}`);
    }
    for (let index = 0; index < 100; index++) {
      await raw.subscribe(`second${index}`);
    }
    raw.unsubscribe('second0');
    raw.send(control('over', 1, 'third'));
    await expectClosed(server, raw, 1013, 'tinybase:15:channels');
  },
);

test(
  'an oversize multiplexed payload closes with tinybase:15:socket',
  options,
  async (t) => {
    const server = await startServer(t);
    const raw = await openRawMultiplex(t, server);
    await raw.hello();
    await raw.subscribe('c');
    raw.sendOn('c', `\n${'x'.repeat(16 * 1024 * 1024)}`);
    await expectClosed(server, raw, 1013, 'tinybase:15:socket');
  },
);

test(
  'fragments on a channel are reassembled and relayed to both kinds of client',
  options,
  async (t) => {
    const server = await startServer(t);
    const mux = await openRawMultiplex(t, server);
    await mux.hello();
    await mux.subscribe('frag');
    const legacy = await openRaw(t, server, 'frag');
    const id = 'Channel-Frag-Id0';
    mux.sendOn('frag', `\n${id}\n1\n2\n1,""]`);
    mux.sendOn('frag', `\n${id}\n0\n2\n["f",`);
    await waitFor(() => legacy.messages.length === 2, 'both fragments');
    assert.deepEqual(legacy.messages, [
      `${mux.id}\n${id}\n0\n2\n["f",`,
      `${mux.id}\n${id}\n1\n2\n1,""]`,
    ]);
  },
);
