import assert from 'node:assert/strict';
import {existsSync, mkdtempSync, readFileSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import test from 'node:test';
import {WebSocket} from 'ws';
import {createMergeableStore} from 'tinybase';
import {createFilePersister} from 'tinybase/persisters/persister-file';
import {
  TEST_TIMEOUT_MS,
  defer,
  errorMessages,
  gate,
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
import {name as implementation} from './support/implementation.js';
import {createMemoryPersister} from './support/persisters.js';

const options = {timeout: TEST_TIMEOUT_MS};
const PETS = {pets: {fido: {species: 'dog'}, felix: {species: 'cat'}}};

// The server's own synchronizer may ask a client for its hashes before that
// client has started syncing; TinyBase reports the unanswered request
// (tinybase:3) and carries on, so only other errors count as failures here.
const unexpected = (errors) =>
  errorMessages(errors).filter((message) => !message.startsWith('tinybase:3:'));

const tempDir = (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tb-ws-server-'));
  defer(t, () => rmSync(dir, {recursive: true, force: true}));
  return dir;
};

const fileFor = (dir, pathId) =>
  join(dir, `${pathId.replace(/[^a-zA-Z0-9]/g, '-')}.json`);

const filePersisterFactory = (dir) => (pathId) =>
  createFilePersister(createMergeableStore(), fileFor(dir, pathId));

// Reads what a file persister has written, as plain tables and values.
const readPersisted = (file) => {
  if (!existsSync(file)) {
    return undefined;
  }
  try {
    const store = createMergeableStore();
    store.setMergeableContent(JSON.parse(readFileSync(file, 'utf8')));
    return plain(store.getContent());
  } catch {
    return undefined;
  }
};

// A server whose persisted paths cannot finish starting until `loading` is
// opened (at the latest when the test ends), so that clients' traffic is held.
const startSlowServer = async (
  t,
  {persisted = () => true, storage, log, requestTimeoutSeconds} = {},
) => {
  const loading = gate();
  const server = await startServer(t, {
    requestTimeoutSeconds,
    createPersisterForPath: (pathId) =>
      persisted(pathId)
        ? createMemoryPersister({
            pathId,
            storage,
            log,
            hooks: {startAutoLoad: () => loading.promise},
          })
        : undefined,
  });
  defer(t, () => loading.open());
  return {server, loading};
};

test(
  'a file-persisted path serves a late client and survives a server restart',
  options,
  async (t) => {
    const dir = tempDir(t);
    const first = await startServer(t, {
      createPersisterForPath: filePersisterFactory(dir),
    });
    const client1 = await openClient(t, first.url('petShop'));
    client1.store.setCell('pets', 'fido', 'species', 'dog');
    const client2 = await openClient(t, first.url('petShop'));
    client2.store.setCell('pets', 'felix', 'species', 'cat');
    await waitForEqual(() => client1.store.getTables(), PETS, 'client 1');
    await waitForEqual(() => client2.store.getTables(), PETS, 'client 2');
    await waitForEqual(
      () => readPersisted(fileFor(dir, 'petShop')),
      [PETS, {}],
      'the file',
    );
    client1.synchronizer.destroy();
    client2.synchronizer.destroy();

    const client3 = await openClient(t, first.url('petShop'));
    await waitForEqual(() => client3.store.getTables(), PETS, 'late client');
    await withTimeout(first.wsServer.destroy(), 'first server destroy');

    const second = await startServer(t, {
      createPersisterForPath: filePersisterFactory(dir),
    });
    const client4 = await openClient(t, second.url('petShop'));
    await waitForEqual(
      () => client4.store.getTables(),
      PETS,
      'client of the restarted server',
    );
    assert.deepEqual(unexpected(first.errors), []);
    assert.deepEqual(unexpected(second.errors), []);
  },
);

test(
  "the [persister, then] form: then's changes reach the client after the persister starts",
  options,
  async (t) => {
    const log = [];
    const server = await startServer(t, {
      createPersisterForPath: (pathId) => {
        const persister = createMemoryPersister({pathId, log});
        return [
          persister,
          (store) => {
            log.push(`${pathId}: then`);
            assert.equal(store, persister.getStore());
            store.setValue('pathId', pathId);
          },
        ];
      },
    });
    const client = await openClient(t, server.url('petShop'));
    client.store.setCell('pets', 'fido', 'species', 'dog');
    await waitForEqual(
      () => client.store.getContent(),
      [{pets: {fido: {species: 'dog'}}}, {pathId: 'petShop'}],
      'content with the value set by then',
    );
    assert.deepEqual(
      log.filter((entry) => !entry.includes('synchronizer')),
      [
        'petShop: startAutoLoad',
        'petShop: startAutoLoad done',
        'petShop: startAutoSave',
        'petShop: startAutoSave done',
        'petShop: then',
      ],
    );
    assert.ok(
      log.indexOf('petShop: then') >
        log.indexOf('petShop: synchronizer listens'),
      'then runs after the synchronizer started',
    );
  },
);

test(
  'the factory is called once per path start, with the path id',
  options,
  async (t) => {
    const calls = [];
    const server = await startServer(t, {
      createPersisterForPath: (pathId) => {
        calls.push(pathId);
        return createMemoryPersister({pathId});
      },
    });
    await Promise.all([
      openClient(t, server.url('one')),
      openClient(t, server.url('one')),
      openClient(t, server.url('two/deep')),
    ]);
    assert.deepEqual(calls.sort(), ['one', 'two/deep']);
  },
);

test(
  'an async factory (a Promise of a persister, or of [persister, then]) works',
  options,
  async (t) => {
    const server = await startServer(t, {
      createPersisterForPath: async (pathId) => {
        await new Promise((resolve) => setImmediate(resolve));
        const persister = createMemoryPersister({pathId});
        return pathId === 'withThen'
          ? [persister, (store) => store.setValue('then', true)]
          : persister;
      },
    });
    const plainClient = await openClient(t, server.url('plain'));
    plainClient.store.setValue('v', 1);
    const late = await openClient(t, server.url('plain'));
    await waitForEqual(
      () => late.store.getValues(),
      {v: 1},
      'data through the async persister',
    );
    const withThen = await openClient(t, server.url('withThen'));
    await waitForEqual(
      () => withThen.store.getValues(),
      {then: true},
      'then value',
    );
    assert.deepEqual(unexpected(server.errors), []);
  },
);

test(
  'a factory returning undefined leaves that path unpersisted but relaying',
  options,
  async (t) => {
    const storage = new Map();
    const server = await startServer(t, {
      createPersisterForPath: (pathId) =>
        pathId.startsWith('kept')
          ? createMemoryPersister({pathId, storage})
          : undefined,
    });
    const [client1, client2] = await Promise.all([
      openClient(t, server.url('transient')),
      openClient(t, server.url('transient')),
    ]);
    client1.store.setValue('v', 'relayed');
    await waitForEqual(
      () => client2.store.getValues(),
      {v: 'relayed'},
      'relay',
    );
    // Nothing answers for the server on an unpersisted path.
    const raw = await openRaw(t, server, 'transient');
    raw.send(payload('S', 'toServer', 1, ''));
    raw.send(payload(raw.id, 'marker', 1, ''));
    await raw.receive(({requestId}) => requestId === 'marker', 'marker');
    assert.ok(raw.messages.every((message) => !message.startsWith('S\n')));
    assert.deepEqual([...storage.keys()], []);

    const kept = await openClient(t, server.url('kept'));
    kept.store.setValue('v', 'stored');
    await waitFor(() => storage.has('kept'), 'the kept path to be stored');
  },
);

test(
  'the server client answers a direct GetContentHashes on a persisted path',
  options,
  async (t) => {
    const server = await startServer(t, {
      createPersisterForPath: (pathId) => [
        createMemoryPersister({pathId}),
        (store) => store.setValue('v', 1),
      ],
    });
    const raw = await openRaw(t, server, 'answers');
    raw.send(payload('S', 'ask', 1, ''));
    const answer = await raw.receive(
      ({requestId}) => requestId === 'ask',
      'the answer',
    );
    assert.equal(answer.from, 'S');
    assert.equal(answer.message, 0);
    // No tables (hash 0) but the value set by then (a non-zero values hash).
    assert.equal(answer.body.length, 2);
    assert.equal(answer.body[0], 0);
    assert.ok(Number.isInteger(answer.body[1]) && answer.body[1] > 0);
  },
);

for (const failure of ['throws', 'rejects']) {
  test(
    `a factory that ${failure} is reported, drops its clients, and is retried by the next connection`,
    options,
    async (t) => {
      const error = new Error('factory failure');
      let calls = 0;
      const server = await startServer(t, {
        createPersisterForPath: (pathId) => {
          if (calls++ === 0) {
            if (failure === 'throws') {
              throw error;
            }
            return Promise.reject(error);
          }
          return createMemoryPersister({pathId});
        },
      });
      const events = [];
      server.wsServer.addPathIdsListener((_, ...args) =>
        events.push(['path', ...args]),
      );
      server.wsServer.addClientIdsListener(null, (_, ...args) =>
        events.push(['client', ...args]),
      );
      const dropped = await openRaw(t, server, 'retry', {expectJoin: false});
      await waitFor(
        () => server.errors.length === 1,
        'the error to be reported',
      );
      assert.equal(server.errors[0], error);
      await waitForEqual(
        () => server.wsServer.getStats(),
        {paths: 0, clients: 0},
        'the path to go',
      );
      const droppedId = events[1]?.[2];
      assert.deepEqual(events, [
        ['path', 'retry', 1],
        ['client', 'retry', droppedId, 1],
        ['client', 'retry', droppedId, -1],
        ['path', 'retry', -1],
      ]);
      // The dropped socket is left open but no longer belongs to any path.
      assert.equal(dropped.webSocket.readyState, WebSocket.OPEN);

      const [client1, client2] = await Promise.all([
        openClient(t, server.url('retry')),
        openClient(t, server.url('retry')),
      ]);
      client1.store.setValue('after', 'retry');
      await waitForEqual(
        () => client2.store.getValues(),
        {after: 'retry'},
        'sync after retry',
      );
      assert.equal(calls, 2);
      assert.equal(server.errors[0], error);
      assert.deepEqual(unexpected(server.errors.slice(1)), []);
    },
  );
}

test(
  'a persister whose start fails is reported, destroyed, and its clients dropped',
  options,
  async (t) => {
    const error = new Error('load failure');
    const log = [];
    const server = await startServer(t, {
      createPersisterForPath: (pathId) =>
        createMemoryPersister({
          pathId,
          log,
          hooks: {
            startAutoLoad: async () => {
              throw error;
            },
          },
        }),
    });
    const dropped = await openRaw(t, server, 'failing', {expectJoin: false});
    await waitFor(
      () => server.errors.includes(error),
      'the start error to be reported',
    );
    await waitForEqual(
      () => server.wsServer.getStats(),
      {paths: 0, clients: 0},
      'the path to go',
    );
    assert.deepEqual(
      log.filter((entry) => !entry.includes('synchronizer')),
      ['failing: startAutoLoad', 'failing: destroy', 'failing: destroy done'],
    );
    assert.equal(server.errors[0], error);
    assert.deepEqual(unexpected(server.errors.slice(1)), []);
    assert.equal(dropped.webSocket.readyState, WebSocket.OPEN);
  },
);

test(
  'clients writing during a slow persister start lose nothing',
  options,
  async (t) => {
    const storage = new Map();
    const {server, loading} = await startSlowServer(t, {storage});
    const clients = await Promise.all([
      openClient(t, server.url('slow'), {start: false}),
      openClient(t, server.url('slow'), {start: false}),
    ]);
    clients[0].store.setCell('pets', 'fido', 'species', 'dog');
    clients[1].store.setCell('pets', 'felix', 'species', 'cat');
    // Each startSync gives up waiting for peers (whose answers are held) after
    // its own timeout, having sent its content hashes into the held queue.
    await withTimeout(
      Promise.all(clients.map(({synchronizer}) => synchronizer.startSync())),
      'client starts',
    );
    assert.deepEqual(storage.get('slow'), undefined);
    loading.open();
    for (const [index, {store}] of clients.entries()) {
      await waitForEqual(() => store.getTables(), PETS, `client ${index}`);
    }
    await waitFor(() => storage.has('slow'), 'the server store to be saved');
    const saved = createMergeableStore();
    await waitForEqual(
      () => (saved.setMergeableContent(storage.get('slow')), saved.getTables()),
      PETS,
      'the persisted tables',
    );
  },
);

test(
  'held content hashes are coalesced per sender and target, in place',
  options,
  async (t) => {
    const {server, loading} = await startSlowServer(t, {
      persisted: (pathId) => pathId === 'slow',
    });
    const receiver = await openRaw(t, server, 'slow');
    const sender = await openRawMultiplex(t, server);
    await sender.hello();
    await sender.subscribe('slow');
    await sender.subscribe('fast');
    sender.sendOn('slow', payload('', 'h1', 2, [1, 1]));
    sender.sendOn('slow', payload(receiver.id, 'd1', 2, [1, 1]));
    sender.sendOn('slow', payload('', 'g', 1, ''));
    sender.sendOn('slow', payload('', 'h2', 2, [2, 2]));
    sender.sendOn('slow', payload(receiver.id, 'd2', 2, [2, 2]));
    sender.sendOn('slow', payload('', 'h3', 2, [3, 3]));
    // One socket's messages are handled in order, so once this echo is back
    // everything above is held by the starting path.
    sender.sendOn('fast', payload(sender.id, 'barrier', 1, ''));
    await sender.receiveOn(
      'fast',
      ({requestId}) => requestId === 'barrier',
      'barrier',
    );
    assert.deepEqual(
      receiver.messages.filter((message) =>
        message.startsWith(`${sender.id}\n`),
      ),
      [],
    );
    loading.open();
    const fromSender = () =>
      receiver.messages.filter((message) =>
        message.startsWith(`${sender.id}\n`),
      );
    await waitFor(() => fromSender().length === 3, 'the held messages');
    assert.deepEqual(fromSender(), [
      `${sender.id}\n["h3",2,[3,3]]`,
      `${sender.id}\n["d2",2,[2,2]]`,
      `${sender.id}\n["g",1,""]`,
    ]);
  },
);

test(
  'more than 1000 held messages close the sender with 1013 tinybase:15:server',
  options,
  async (t) => {
    const {server, loading} = await startSlowServer(t);
    const receiver = await openRaw(t, server, 'held');
    const keeper = await openRaw(t, server, 'held');
    const flooder = await openRaw(t, server, 'held');
    keeper.send(payload('', 'keep', 1, ''));
    for (let index = 0; index < 1001; index++) {
      flooder.send(payload('', `flood${index}`, 1, ''));
    }
    assert.deepEqual(
      await withTimeout(flooder.closed, 'the flooder to be closed'),
      {
        code: 1013,
        reason: 'tinybase:15:server',
      },
    );
    assert.deepEqual(errorMessages(server.errors), ['tinybase:15:server']);
    loading.open();
    await receiver.receive(
      ({requestId}) => requestId === 'keep',
      "keeper's held message",
    );
    await waitFor(
      () => !server.wsServer.getClientIds('held').includes(flooder.id),
      'flooder gone',
    );
    assert.ok(
      receiver.messages.every(
        (message) => !message.startsWith(`${flooder.id}\n`),
      ),
    );
    assert.equal(keeper.webSocket.readyState, WebSocket.OPEN);
  },
);

test(
  'more than 16 MiB of held messages close the sender with 1013 tinybase:15:server',
  options,
  async (t) => {
    const {server} = await startSlowServer(t);
    const flooder = await openRaw(t, server, 'heavy');
    const big = `\n["big",1,""]${' '.repeat(9 * 1024 * 1024)}`;
    flooder.send(big);
    flooder.send(big);
    assert.deepEqual(
      await withTimeout(flooder.closed, 'the flooder to be closed'),
      {
        code: 1013,
        reason: 'tinybase:15:server',
      },
    );
  },
);

test(
  'held messages expire after ten request timeouts, closing their senders only',
  options,
  async (t) => {
    const {server} = await startSlowServer(t, {requestTimeoutSeconds: 0.2});
    const quiet = await openRaw(t, server, 'expiring');
    const sender = await openRaw(t, server, 'expiring');
    sender.send(payload('', 'held', 1, ''));
    assert.deepEqual(
      await withTimeout(sender.closed, 'the sender to be closed'),
      {
        code: 1013,
        reason: 'tinybase:15:server',
      },
    );
    assert.deepEqual(errorMessages(server.errors), ['tinybase:15:server']);
    assert.equal(quiet.webSocket.readyState, WebSocket.OPEN);
  },
);

test(
  'a client arriving while its path is stopping gets a fresh path without path events',
  options,
  async (t) => {
    const storage = new Map();
    const log = [];
    const destroying = gate();
    let persisters = 0;
    const server = await startServer(t, {
      createPersisterForPath: (pathId) =>
        createMemoryPersister({
          pathId: `${pathId}#${persisters++}`,
          storage: {
            has: () => storage.has(pathId),
            get: () => storage.get(pathId),
            set: (_, content) => storage.set(pathId, content),
          },
          log,
          hooks: persisters === 1 ? {destroy: () => destroying.promise} : {},
        }),
    });
    defer(t, () => destroying.open());
    const events = [];
    server.wsServer.addPathIdsListener((_, ...args) =>
      events.push(['path', ...args]),
    );
    server.wsServer.addClientIdsListener(null, (_, pathId, clientId, change) =>
      events.push(['client', pathId, change]),
    );

    const first = await openClient(t, server.url('room'));
    first.store.setValue('written', 'before');
    await waitFor(
      () => storage.get('room')?.[1]?.[0]?.written,
      'the first write to be saved',
    );
    first.synchronizer.destroy();
    await waitFor(
      () => log.includes('room#0: destroy'),
      'the path to start stopping',
    );

    const second = await openClient(t, server.url('room'));
    assert.deepEqual(server.wsServer.getPathIds(), ['room']);
    assert.deepEqual(server.wsServer.getStats(), {paths: 1, clients: 1});
    // The new incarnation's persister is made at once, as in TinyBase.
    assert.equal(persisters, 2);
    destroying.open();
    await waitFor(
      () => log.includes('room#0: destroy done'),
      'the old path to stop',
    );
    await waitForEqual(
      () => second.store.getValues(),
      {written: 'before'},
      'the saved value',
    );
    assert.deepEqual(server.wsServer.getPathIds(), ['room']);
    if (implementation == 'native') {
      // TinyBase loads it while the old one may still be saving; this server waits.
      assert.ok(
        log.indexOf('room#0: destroy done') <
          log.indexOf('room#1: startAutoLoad'),
        JSON.stringify(log),
      );
    }

    second.synchronizer.destroy();
    await waitForEqual(
      () => server.wsServer.getStats(),
      {paths: 0, clients: 0},
      'all gone',
    );
    assert.deepEqual(events, [
      ['path', 'room', 1],
      ['client', 'room', 1],
      ['client', 'room', -1],
      ['client', 'room', 1],
      ['client', 'room', -1],
      ['path', 'room', -1],
    ]);
  },
);

test(
  'fifty file-persisted paths start and save at once',
  options,
  async (t) => {
    const dir = tempDir(t);
    const server = await startServer(t, {
      createPersisterForPath: filePersisterFactory(dir),
    });
    const rooms = Array.from({length: 50}, (_, index) => `room/${index}`);
    const clients = await Promise.all(
      rooms.map((room) => openClient(t, server.url(room))),
    );
    assert.deepEqual(server.wsServer.getStats(), {paths: 50, clients: 50});
    clients.forEach(({store}, index) => store.setValue('room', index));
    for (const [index, room] of rooms.entries()) {
      await waitForEqual(
        () => readPersisted(fileFor(dir, room)),
        [{}, {room: index}],
        room,
      );
    }
    await withTimeout(server.wsServer.destroy(), 'destroy');
    assert.deepEqual(unexpected(server.errors), []);
  },
);

test(
  'destroy during a persister start waits for the start, then tears the path down',
  options,
  async (t) => {
    const log = [];
    const {server, loading} = await startSlowServer(t, {log});
    const raw = await openRaw(t, server, 'starting');
    await waitFor(
      () => log.includes('starting: startAutoLoad'),
      'the start to begin',
    );
    const destroyed = server.wsServer
      .destroy()
      .then(() => log.push('destroyed'));
    assert.equal(
      (await withTimeout(raw.closed, 'the client to be closed')).code,
      1005,
    );
    log.push('opening');
    loading.open();
    await withTimeout(destroyed, 'destroy');
    assert.deepEqual(
      log.filter((entry) => !entry.includes('synchronizer')),
      [
        'starting: startAutoLoad',
        'opening',
        'starting: startAutoLoad done',
        'starting: startAutoSave',
        'starting: startAutoSave done',
        'starting: destroy',
        'starting: destroy done',
        'destroyed',
      ],
    );
  },
);

test(
  'teardown: client -1, persister destroyed, then synchronizer, then path -1',
  options,
  async (t) => {
    const destroying = gate();
    const log = [];
    const server = await startServer(t, {
      createPersisterForPath: (pathId) =>
        createMemoryPersister({
          pathId,
          log,
          hooks: {destroy: () => destroying.promise},
        }),
    });
    defer(t, () => destroying.open());
    server.wsServer.addPathIdsListener((_, pathId, change) =>
      log.push(`path ${pathId} ${change}`),
    );
    server.wsServer.addClientIdsListener(null, (_, pathId, __, change) =>
      log.push(`client ${pathId} ${change}`),
    );
    const client = await openClient(t, server.url('order'));
    // The path's server client finishes starting (its first load waits for a client that may
    // not sync yet) before the client leaves, so what follows is the teardown of a started path.
    await waitFor(
      () => log.includes('order: synchronizer listens'),
      'the path to start',
    );
    client.store.setValue('v', 1);
    client.synchronizer.destroy();
    await waitFor(
      () => log.includes('order: destroy'),
      'the persister to be destroyed',
    );
    // The path is still counted, and listed, while it tears down.
    assert.deepEqual(server.wsServer.getStats(), {paths: 1, clients: 0});
    assert.deepEqual(server.wsServer.getPathIds(), ['order']);
    assert.ok(!log.includes('order: synchronizer stops listening'));
    destroying.open();
    await waitFor(() => log.includes('path order -1'), 'the path to go');
    assert.deepEqual(server.wsServer.getStats(), {paths: 0, clients: 0});
    const teardown = log.slice(log.indexOf('client order -1'));
    assert.deepEqual(teardown, [
      'client order -1',
      'order: destroy',
      'order: destroy done',
      'order: synchronizer stops listening',
      'path order -1',
    ]);
  },
);
