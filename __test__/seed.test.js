// The four examples of TinyBase's reference page for createWsServer, kept as
// written apart from what running them here needs:
// - createWsServer comes from the implementation under test; the first three
//   examples use the global WebSocket where Node has one (22 and later), ws's
//   on Node 20, and the fourth imports ws's as written;
// - the server listens on a free port of the loopback interface, read back
//   right after creating it, instead of on 8047;
// - each '// ...' (time passing, in the page) waits until the page's next
//   claim holds, and console.log is captured so that the '// ->' outputs can
//   be compared once the example has run;
// - the examples that write petShop.json run in a temporary directory.
import assert from 'node:assert/strict';
import {mkdtempSync, readFileSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterEach, test} from 'node:test';
import {isDeepStrictEqual} from 'node:util';
import {once} from 'node:events';
import {WebSocket as WsWebSocket, WebSocketServer} from 'ws';
import {createMergeableStore} from 'tinybase';
import {createFilePersister} from 'tinybase/persisters/persister-file';
import {createWsSynchronizer as createWsSynchronizerOfTinyBase} from 'tinybase/synchronizers/synchronizer-ws-client';
import {
  TEST_TIMEOUT_MS,
  plain,
  waitFor,
  withTimeout,
} from './support/harness.js';
import {
  NO_WS_WEBSOCKET,
  createWsServer as createWsServerUnderTest,
} from './support/implementation.js';

const options = {timeout: TEST_TIMEOUT_MS};

// IPv4 loopback seen through an IPv6 socket, as the fourth example expects of
// a local client ('::ffff:127.0.0.1'), without listening beyond loopback.
const WebSocket = globalThis.WebSocket ?? WsWebSocket;
const LOOPBACK = '::ffff:127.0.0.1';

// Whatever an example opens is closed after it, even when it fails midway.
const opened = [];
const createWsServer = (...args) => {
  const server = createWsServerUnderTest(...args);
  opened.push(() => server.destroy().catch(() => {}));
  return server;
};
const createWsSynchronizer = async (...args) => {
  const synchronizer = await createWsSynchronizerOfTinyBase(...args);
  opened.push(() => synchronizer.destroy());
  return synchronizer;
};
const closeOpened = async () => {
  while (opened.length) {
    await withTimeout(opened.pop()(), 'closing what an example opened');
  }
};
afterEach(closeOpened);

const portOf = async (server) => {
  const webSocketServer = server.getWebSocketServer();
  if (!webSocketServer.address()) {
    await once(webSocketServer, 'listening');
  }
  return webSocketServer.address().port;
};

const holds = (get, expected) => () =>
  isDeepStrictEqual(plain(get()), expected);

const persistedTables = (file) => () => {
  try {
    const store = createMergeableStore();
    store.setMergeableContent(JSON.parse(readFileSync(file, 'utf8')));
    return store.getTables();
  } catch {
    return undefined;
  }
};

const inTemporaryDirectory = async (run) => {
  const previous = process.cwd();
  const dir = mkdtempSync(join(tmpdir(), 'tb-ws-seed-'));
  process.chdir(dir);
  try {
    await run();
  } finally {
    // File persisters watch their file: stop them before it goes.
    await closeOpened();
    process.chdir(previous);
    rmSync(dir, {recursive: true, force: true});
  }
};

const PETS = {pets: {fido: {species: 'dog'}, felix: {species: 'cat'}}};

test(
  'example 1: two clients synchronize on a shared path',
  options,
  async () => {
    const logged = [];
    const console = {log: (value) => logged.push(plain(value))};

    // Server
    const server = createWsServer(
      new WebSocketServer({port: 0, host: LOOPBACK}),
    );
    const port = await portOf(server);

    // Client 1
    const clientStore1 = createMergeableStore();
    clientStore1.setCell('pets', 'fido', 'species', 'dog');
    const synchronizer1 = await createWsSynchronizer(
      clientStore1,
      new WebSocket(`ws://localhost:${port}/petShop`),
    );
    await synchronizer1.startSync();
    // ...

    // Client 2
    const clientStore2 = createMergeableStore();
    clientStore2.setCell('pets', 'felix', 'species', 'cat');
    const synchronizer2 = await createWsSynchronizer(
      clientStore2,
      new WebSocket(`ws://localhost:${port}/petShop`),
    );
    await synchronizer2.startSync();
    await waitFor(
      holds(() => clientStore1.getTables(), PETS),
      'client 1',
    );
    await waitFor(
      holds(() => clientStore2.getTables(), PETS),
      'client 2',
    );

    console.log(clientStore1.getTables());
    // -> {pets: {fido: {species: 'dog'}, felix: {species: 'cat'}}}
    console.log(clientStore2.getTables());
    // -> {pets: {fido: {species: 'dog'}, felix: {species: 'cat'}}}

    synchronizer1.destroy();
    synchronizer2.destroy();
    server.destroy();

    assert.deepEqual(logged, [PETS, PETS]);
  },
);

test(
  'example 2: a file-persisted path serves a third client later',
  options,
  () =>
    inTemporaryDirectory(async () => {
      const logged = [];
      const console = {log: (value) => logged.push(plain(value))};

      // Server
      const server = createWsServer(
        new WebSocketServer({port: 0, host: LOOPBACK}),
        (pathId) =>
          createFilePersister(
            createMergeableStore(),
            pathId.replace(/[^a-zA-Z0-9]/g, '-') + '.json',
          ),
      );
      const port = await portOf(server);

      // Client 1
      const clientStore1 = createMergeableStore();
      clientStore1.setCell('pets', 'fido', 'species', 'dog');
      const synchronizer1 = await createWsSynchronizer(
        clientStore1,
        new WebSocket(`ws://localhost:${port}/petShop`),
      );
      await synchronizer1.startSync();
      // ...

      // Client 2
      const clientStore2 = createMergeableStore();
      clientStore2.setCell('pets', 'felix', 'species', 'cat');
      const synchronizer2 = await createWsSynchronizer(
        clientStore2,
        new WebSocket(`ws://localhost:${port}/petShop`),
      );
      await synchronizer2.startSync();
      await waitFor(
        holds(() => clientStore1.getTables(), PETS),
        'client 1',
      );
      await waitFor(
        holds(() => clientStore2.getTables(), PETS),
        'client 2',
      );
      await waitFor(holds(persistedTables('petShop.json'), PETS), 'the file');

      console.log(clientStore1.getTables());
      // -> {pets: {fido: {species: 'dog'}, felix: {species: 'cat'}}}
      console.log(clientStore2.getTables());
      // -> {pets: {fido: {species: 'dog'}, felix: {species: 'cat'}}}

      synchronizer1.destroy();
      synchronizer2.destroy();
      await waitFor(() => server.getPathIds().length == 0, 'the path to stop');

      // Client 3 connects later
      const clientStore3 = createMergeableStore();
      const synchronizer3 = await createWsSynchronizer(
        clientStore3,
        new WebSocket(`ws://localhost:${port}/petShop`),
      );
      await synchronizer3.startSync();
      await waitFor(
        holds(() => clientStore3.getTables(), PETS),
        'client 3',
      );

      console.log(clientStore3.getTables());
      // -> {pets: {fido: {species: 'dog'}, felix: {species: 'cat'}}}

      synchronizer3.destroy();
      server.destroy();

      // Remove file for the purposes of this demo.
      rmSync('petShop.json');

      assert.deepEqual(logged, [PETS, PETS, PETS]);
    }),
);

test(
  'example 3: the then callback updates data once synchronization has started',
  options,
  () =>
    inTemporaryDirectory(async () => {
      const logged = [];
      const console = {log: (value) => logged.push(plain(value))};
      const expected = [{pets: {fido: {species: 'dog'}}}, {pathId: 'petShop'}];

      // Server
      const server = createWsServer(
        new WebSocketServer({port: 0, host: LOOPBACK}),
        (pathId) => [
          createFilePersister(
            createMergeableStore(),
            pathId.replace(/[^a-zA-Z0-9]/g, '-') + '.json',
          ),
          (store) => store.setValue('pathId', pathId),
        ],
      );
      const port = await portOf(server);

      const clientStore = createMergeableStore();
      clientStore.setCell('pets', 'fido', 'species', 'dog');
      const synchronizer = await createWsSynchronizer(
        clientStore,
        new WebSocket(`ws://localhost:${port}/petShop`),
      );
      await synchronizer.startSync();
      await waitFor(
        holds(() => clientStore.getContent(), expected),
        'the client',
      );

      console.log(clientStore.getContent());
      // -> [{pets: {fido: {species: 'dog'}}}, {"pathId": "petShop"}]

      synchronizer.destroy();
      server.destroy();

      // Remove file for the purposes of this demo.
      rmSync('petShop.json');

      assert.deepEqual(logged, [expected]);
    }),
);

test(
  "example 4: a custom connection listener sees the client's address",
  {...options, skip: NO_WS_WEBSOCKET},
  async () => {
    const logged = [];
    const console = {log: (value) => logged.push(plain(value))};

    // On the server:
    const webSocketServer = new WebSocketServer({port: 0, host: LOOPBACK});
    webSocketServer.on('connection', (_, request) => {
      const clientAddress = request.socket.remoteAddress;
      if (clientAddress == '::1' || clientAddress == '::ffff:127.0.0.1') {
        console.log('Local client connected');
      }
    });
    const server = createWsServer(webSocketServer);
    const port = await portOf(server);

    // On a client:
    const synchronizer = await createWsSynchronizer(
      createMergeableStore(),
      new WsWebSocket(`ws://localhost:${port}`),
    );
    // -> 'Local client connected'

    synchronizer.destroy();
    server.destroy();

    assert.deepEqual(logged, ['Local client connected']);
  },
);
