// Access control with real TinyBase clients, on both planes: the `authorize` hook (write,
// read-only, denied; sync, async and throwing), denied channels beside granted ones on one
// multiplexed socket, and the client and message-rate limits.

import assert from 'node:assert/strict';
import {once} from 'node:events';
import {mkdtempSync, readFileSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import test from 'node:test';
import {WebSocket, WebSocketServer} from 'ws';
import {createMergeableStore} from 'tinybase';
import {createFilePersister} from 'tinybase/persisters/persister-file';
import {createWsSynchronizer} from 'tinybase/synchronizers/synchronizer-ws-client';
import {
  TEST_TIMEOUT_MS,
  closeOf,
  defer,
  errorMessages,
  gate,
  openClient,
  openRaw,
  payload,
  plain,
  waitFor,
  waitForEqual,
  withTimeout,
} from '../support/harness.js';
import {getMetrics} from '../../index.js';
import {createMemoryPersister} from '../support/persisters.js';
import {createWsServer, startNative} from './support/native.js';

const options = {timeout: TEST_TIMEOUT_MS};

// The JS plane is what a permessage-deflate connection gets: ws clients offer it by default.
const PLANES = ['native', 'js'];

const CONTENT_DIFF = [
  [{t: [{r: [{c: ['evil', 'Nn1JUF-----7JQY8']}, '']}, '']}, ''],
  [{}, ''],
  1,
];

const roleOf = (request) =>
  new URL(request.url, 'http://localhost').searchParams.get('role');

// The test's own authorize: the `role` query parameter decides.
const byRole = ({request}) => {
  const role = roleOf(request);
  return role === 'write' || role === 'read' ? role : false;
};

const startServer = async (
  t,
  plane,
  {createPersisterForPath, requestTimeoutSeconds = 1, ...nativeOptions} = {},
) => {
  const server = await startNative(t, {
    perMessageDeflate: plane === 'js',
    createPersisterForPath,
    requestTimeoutSeconds,
    nativeOptions,
  });
  return {
    ...server,
    // Every connection is on the plane under test: deflate keeps it in JS.
    assertPlane: () =>
      assert.deepEqual(
        server.connections.filter(
          ({webSocket}) => (webSocket.extensions !== '') !== (plane === 'js'),
        ),
        [],
      ),
  };
};

// The messages access control dropped for `reason`, from the server's metrics.
const dropped = (wsServer, reason) =>
  getMetrics(wsServer)
    .find(({name}) => name.endsWith('messages_dropped_total'))
    .values.find(({labels}) => labels.reason === reason).value;

const withRole = (url, role) => `${url}?role=${role}`;

for (const plane of PLANES) {
  test(
    `${plane} plane: a read-only client gets every change but changes no other store, persisted or not`,
    options,
    async (t) => {
      const dir = mkdtempSync(join(tmpdir(), 'tinybase-access-'));
      t.after(() => rmSync(dir, {recursive: true, force: true}));
      const serverStores = new Map();
      const server = await startServer(t, plane, {
        authorize: byRole,
        createPersisterForPath: (pathId) => {
          const store = createMergeableStore();
          serverStores.set(pathId, store);
          return createFilePersister(store, join(dir, `${pathId}.json`));
        },
      });
      const persisted = () => {
        try {
          return JSON.parse(readFileSync(join(dir, 'doc.json'), 'utf8'));
        } catch {
          return undefined;
        }
      };

      // The reader comes first, alone with the server client.
      const reader = await openClient(t, withRole(server.url('doc'), 'read'));
      reader.store.setCell('t', 'r', 'c', 'evil');
      const writer = await openClient(t, withRole(server.url('doc'), 'write'));
      writer.store.setCell('t', 'w', 'c', 'first');
      await waitForEqual(
        () => reader.store.getCell('t', 'w', 'c'),
        'first',
        "the writer's change at the reader",
      );
      reader.store.setCell('t', 'r2', 'c', 'evil');
      // A request after those changes: once it is answered, the server has dealt with them.
      await withTimeout(reader.synchronizer.load(), 'the reader to load');
      writer.store.setCell('t', 'w', 'c', 'last');
      await waitForEqual(
        () => reader.store.getCell('t', 'w', 'c'),
        'last',
        "the writer's last change at the reader",
      );
      await waitForEqual(
        () => persisted()?.[0][0].t?.[0].w?.[0].c?.[0],
        'last',
        "the writer's last change persisted",
      );
      const expected = {t: {w: {c: 'last'}}};
      assert.deepEqual(plain(writer.store.getTables()), expected);
      assert.deepEqual(plain(serverStores.get('doc').getTables()), expected);
      assert.doesNotMatch(JSON.stringify(persisted()), /evil/);
      assert.equal(reader.store.getCell('t', 'r2', 'c'), 'evil');
      // The server client's first request had only the reader to answer it, so it timed out.
      assert.ok(
        errorMessages(server.errors).every((message) =>
          message.startsWith('tinybase:3:'),
        ),
        String(server.errors),
      );
      server.assertPlane();
    },
  );

  test(
    `${plane} plane: a read-only client that is a writer's only peer syncs without changing it`,
    options,
    async (t) => {
      const server = await startServer(t, plane, {authorize: byRole});
      const writer = await openClient(t, withRole(server.url('p'), 'write'));
      writer.store.setValue('before', 1);
      const reader = await openClient(t, withRole(server.url('p'), 'read'));
      assert.equal(
        reader.store.getValue('before'),
        1,
        'a complete initial sync',
      );
      reader.store.setValue('evil', 1);
      await withTimeout(reader.synchronizer.load(), 'the reader to load');
      writer.store.setValue('after', 2);
      await waitForEqual(() => reader.store.getValue('after'), 2, 'after');
      assert.deepEqual(plain(writer.store.getValues()), {before: 1, after: 2});
      assert.ok(dropped(server.wsServer, 'read_only') >= 1);
      server.assertPlane();
    },
  );

  test(
    `${plane} plane: a denied client is closed 1008 and nothing it sent is relayed`,
    options,
    async (t) => {
      const server = await startServer(t, plane, {authorize: byRole});
      const writer = await openRaw(t, server, 'p?role=write', {pathId: 'p'});
      const denied = new WebSocket(server.url('p?role=none'));
      denied.on('error', () => {});
      const closed = closeOf(denied);
      await withTimeout(once(denied, 'open'), 'the denied client to open');
      denied.send(payload('', 'd', 3, CONTENT_DIFF));
      assert.deepEqual(await withTimeout(closed, 'the denied close'), {
        code: 1008,
        reason: 'access denied',
      });
      // A later writer's message arrives; the denied one never did.
      const other = await openRaw(t, server, 'p?role=write', {pathId: 'p'});
      other.send(payload('', 'o', 1, ''));
      await writer.receive(({requestId}) => requestId === 'o', 'the marker');
      assert.deepEqual(
        writer.messages.filter((message) => !message.startsWith(other.id)),
        [],
      );
      assert.deepEqual(
        server.wsServer.getClientIds('p').sort(),
        [writer.id, other.id].sort(),
      );
      assert.deepEqual(server.errors, []);
    },
  );

  test(
    `${plane} plane: a denied channel fails its synchronizer while its sibling syncs on the same socket`,
    options,
    async (t) => {
      const server = await startServer(t, plane, {
        authorize: ({pathId}) => (pathId === 'base/open' ? 'write' : false),
      });
      const legacy = await openClient(t, server.url('base/open'));
      const open = await openClient(t, server.url('base'), {channelId: 'open'});
      await assert.rejects(
        createWsSynchronizer(
          createMergeableStore(),
          open.webSocket,
          'secret',
          1,
        ),
        /tinybase:4/,
      );
      legacy.store.setValue('v', 'shared');
      await waitForEqual(() => open.store.getValue('v'), 'shared', 'v');
      open.store.setValue('w', 'back');
      await waitForEqual(() => legacy.store.getValue('w'), 'back', 'w');
      assert.equal(open.webSocket.readyState, WebSocket.OPEN);
      assert.deepEqual(server.wsServer.getPathIds(), ['base/open']);
      server.assertPlane();
    },
  );

  test(
    `${plane} plane: messages sent while an async authorize is pending are relayed once it grants`,
    options,
    async (t) => {
      const decisions = [];
      const server = await startServer(t, plane, {
        authorize: ({request, pathId, clientId}) => {
          const decision = gate();
          decisions.push({request, pathId, clientId, decision});
          return decision.promise;
        },
      });
      const writerSocket = new WebSocket(server.url('p'));
      await waitFor(() => decisions.length == 1, 'the first authorize');
      decisions[0].decision.open('write');
      const writer = await openClient(t, server.url('p'), {
        webSocket: writerSocket,
      });
      // A client whose messages arrive before its decision.
      const late = new WebSocket(server.url('p'));
      late.on('error', () => {});
      defer(t, () => late.terminate());
      await withTimeout(once(late, 'open'), 'open');
      late.send(payload('', 'x', 3, CONTENT_DIFF));
      await waitFor(() => decisions.length == 2, 'the second authorize');
      const [, {pathId, clientId, request}] = decisions;
      assert.equal(pathId, 'p');
      assert.equal(clientId, request.headers['sec-websocket-key']);
      assert.deepEqual(server.wsServer.getClientIds('p').length, 1);
      decisions[1].decision.open('write');
      await waitForEqual(
        () => writer.store.getCell('t', 'r', 'c'),
        'evil',
        'the early message relayed',
      );
      // A channel waits too: its synchronizer resolves once granted, here read-only.
      const channelStore = createMergeableStore();
      const channelSocket = new WebSocket(server.url(), ['tinybase']);
      channelSocket.on('error', () => {});
      defer(t, () => channelSocket.terminate());
      const channel = createWsSynchronizer(channelStore, channelSocket, 'p', 5);
      await waitFor(() => decisions.length == 3, 'the channel authorize');
      assert.equal(decisions[2].pathId, 'p');
      decisions[2].decision.open('read');
      const synchronizer = await withTimeout(channel, 'the channel');
      defer(t, () => synchronizer.destroy());
      await withTimeout(synchronizer.startSync(), 'the channel to sync');
      assert.equal(channelStore.getCell('t', 'r', 'c'), 'evil');
      channelStore.setValue('from channel', 1);
      await withTimeout(synchronizer.load(), 'the channel to load');
      writer.store.setValue('from writer', 2);
      await waitForEqual(
        () => channelStore.getValue('from writer'),
        2,
        "the writer's change on the read-only channel",
      );
      assert.deepEqual(plain(writer.store.getValues()), {'from writer': 2});
      assert.deepEqual(server.errors, []);
    },
  );

  test(
    `${plane} plane: a decision that comes after destroy() began starts no path`,
    options,
    async (t) => {
      const decision = gate();
      const created = [];
      const server = await startServer(t, plane, {
        authorize: () => decision.promise,
        createPersisterForPath: (pathId) => {
          created.push(pathId);
          return createMemoryPersister({pathId});
        },
      });
      const webSocket = new WebSocket(server.url('p'));
      webSocket.on('error', () => {});
      defer(t, () => webSocket.terminate());
      await withTimeout(once(webSocket, 'open'), 'open');
      const destroyed = server.wsServer.destroy();
      decision.open('write');
      await withTimeout(destroyed, 'destroy');
      assert.deepEqual(created, []);
      assert.deepEqual(server.wsServer.getPathIds(), []);
    },
  );

  test(
    `${plane} plane: an authorize that throws, rejects or answers nonsense denies and is reported`,
    options,
    async (t) => {
      const failures = {
        throws: () => {
          throw new Error('authorize threw');
        },
        rejects: () => Promise.reject(new Error('authorize rejected')),
        nonsense: () => 'admin',
      };
      const server = await startServer(t, plane, {
        authorize: ({request}) => failures[roleOf(request)](),
      });
      for (const role of Object.keys(failures)) {
        const webSocket = new WebSocket(withRole(server.url('p'), role));
        webSocket.on('error', () => {});
        const closed = closeOf(webSocket);
        assert.deepEqual(await withTimeout(closed, role), {
          code: 1008,
          reason: 'access denied',
        });
      }
      assert.deepEqual(errorMessages(server.errors), [
        'authorize threw',
        'authorize rejected',
        "authorize must return 'write', 'read' or false, not 'admin'",
      ]);
      assert.deepEqual(server.wsServer.getPathIds(), []);
    },
  );

  test(
    `${plane} plane: a client beyond maxClientsPerPath is refused, and one over maxMessagesPerSecond closed`,
    options,
    async (t) => {
      const server = await startServer(t, plane, {
        maxClientsPerPath: 2,
        maxMessagesPerSecond: 20,
      });
      await openClient(t, server.url('p'));
      await openClient(t, server.url('p'));
      const third = new WebSocket(server.url('p'));
      third.on('error', () => {});
      assert.deepEqual(await withTimeout(closeOf(third), 'the refusal'), {
        code: 1013,
        reason: 'too many clients on this path',
      });
      const flooder = await openRaw(t, server, 'q');
      for (let sent = 0; sent < 400; sent++) {
        flooder.send(payload('S', `f${sent}`, 1, ''));
      }
      assert.deepEqual(await withTimeout(flooder.closed, 'the flood close'), {
        code: 1008,
        reason: 'too many messages per second',
      });
      assert.deepEqual(errorMessages(server.errors), [
        'too many clients on this path',
        'too many messages per second',
      ]);
      assert.deepEqual(server.wsServer.getClientIds('p').length, 2);
      server.assertPlane();
    },
  );
}

test('the access options are checked when the server is created', () => {
  const webSocketServer = new WebSocketServer({noServer: true});
  for (const [nativeOptions, message] of [
    [{authorize: 'yes'}, /authorize must be a function/],
    [{maxClientsPerPath: 0}, /maxClientsPerPath must be a positive number/],
    [{maxMessagesPerSecond: -1}, /maxMessagesPerSecond/],
  ]) {
    assert.throws(
      () =>
        createWsServer(
          webSocketServer,
          undefined,
          undefined,
          1,
          undefined,
          nativeOptions,
        ),
      message,
    );
  }
});
