// Fault isolation: whatever goes wrong in user code for one path (a listener, the error handler,
// the persister factory, the persister, its `then`) is reported to onIgnoredError as the very
// Error TinyBase would pass on, and clients of every other path keep syncing. Each test ends by
// proving the relay still works for real TinyBase clients of a path the fault never touched.

import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import {once} from 'node:events';
import {existsSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import test from 'node:test';
import {fileURLToPath} from 'node:url';
import {WebSocket} from 'ws';
import {
  TEST_TIMEOUT_MS,
  defer,
  errorMessages,
  gate,
  openClient,
  openRaw,
  plain,
  startServer,
  waitFor,
  waitForEqual,
  withTimeout,
} from './support/harness.js';
import {name as implementation} from './support/implementation.js';
import {createMemoryPersister} from './support/persisters.js';

const options = {timeout: TEST_TIMEOUT_MS};

// The server's own synchronizer may ask a client for hashes before that client has started
// syncing; TinyBase reports the unanswered request (tinybase:3) and carries on, so it is noise
// here. Everything else onIgnoredError receives must be accounted for by the test.
const reported = (errors) =>
  errors.filter((error) => !String(error?.message).startsWith('tinybase:3:'));

// Waits until `error` itself (not an equal copy) has reached onIgnoredError.
const waitForReported = (server, error) =>
  waitFor(
    () => server.errors.includes(error),
    `'${error.message}' to reach onIgnoredError; got ${JSON.stringify(errorMessages(server.errors))}`,
  );

// A factory that persists every path in memory unless `fault` handles it; the stores it made are
// kept so a test can check what the server side of a path holds.
const factory = (fault = () => undefined) => {
  const stores = new Map();
  const storage = new Map();
  const createPersisterForPath = (pathId) => {
    const faulty = fault(pathId, storage);
    if (faulty !== undefined) {
      return faulty;
    }
    const persister = createMemoryPersister({pathId, storage});
    stores.set(pathId, persister.store);
    return persister;
  };
  return {createPersisterForPath, stores, storage};
};

// Two real TinyBase clients of `pathId` each write a row and must both end with both rows, which
// takes the relay in both directions (and, with a persister, the server's store gets them too).
const assertRelays = async (t, server, pathId, stores) => {
  const [a, b] = await Promise.all([
    openClient(t, server.url(pathId)),
    openClient(t, server.url(pathId)),
  ]);
  a.store.setCell('t', 'a', 'c', 1);
  b.store.setCell('t', 'b', 'c', 2);
  const expected = {t: {a: {c: 1}, b: {c: 2}}};
  await waitForEqual(
    () => a.store.getTables(),
    expected,
    `${pathId}: client a`,
  );
  await waitForEqual(
    () => b.store.getTables(),
    expected,
    `${pathId}: client b`,
  );
  if (stores !== undefined) {
    await waitForEqual(
      () => stores.get(pathId)?.getTables(),
      expected,
      `${pathId}: the server's store`,
    );
  }
};

const tempDir = (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tb-ws-faults-'));
  defer(t, () => rmSync(dir, {recursive: true, force: true}));
  return dir;
};

test(
  'a path id listener that throws is reported; other paths keep relaying',
  options,
  async (t) => {
    const server = await startServer(t);
    const error = new Error('path listener failure');
    server.wsServer.addPathIdsListener((_, pathId) => {
      if (pathId === 'faulty') {
        throw error;
      }
    });
    await openRaw(t, server, 'faulty');
    await waitForReported(server, error);
    await assertRelays(t, server, 'healthy');
    // The faulty path itself was not given up on either.
    assert.equal(server.wsServer.getClientIds('faulty').length, 1);
    assert.deepEqual(reported(server.errors), [error]);
  },
);

test(
  'a client id listener that throws is reported; other paths keep relaying',
  options,
  async (t) => {
    const server = await startServer(t);
    const error = new Error('client listener failure');
    server.wsServer.addClientIdsListener('faulty', () => {
      throw error;
    });
    await openRaw(t, server, 'faulty');
    await waitForReported(server, error);
    await assertRelays(t, server, 'healthy');
    assert.equal(server.wsServer.getClientIds('faulty').length, 1);
    assert.deepEqual(reported(server.errors), [error]);
  },
);

test(
  'an onIgnoredError that throws neither stops the relay nor later reports',
  options,
  async (t) => {
    // The harness records each error before calling this handler, which then throws every time.
    const server = await startServer(t, {
      onIgnoredError: () => {
        throw new Error('handler failure');
      },
    });
    const first = new Error('first listener failure');
    const second = new Error('second listener failure');
    server.wsServer.addPathIdsListener((_, pathId) => {
      if (pathId === 'faulty-1') {
        throw first;
      }
    });
    server.wsServer.addClientIdsListener('faulty-2', () => {
      throw second;
    });
    await openRaw(t, server, 'faulty-1');
    await waitForReported(server, first);
    await openRaw(t, server, 'faulty-2');
    await waitForReported(server, second);
    // An error the relay itself finds still gets through, and still closes only its sender.
    const invalid = await openRaw(t, server, 'faulty-3');
    invalid.send('not a sync message');
    assert.deepEqual(
      await withTimeout(invalid.closed, 'the invalid client to close'),
      {
        code: 1007,
        reason: 'tinybase:14',
      },
    );
    await waitFor(
      () => errorMessages(server.errors).includes('tinybase:14'),
      'tinybase:14 to be reported',
    );
    await assertRelays(t, server, 'healthy');
    assert.deepEqual(reported(server.errors).slice(0, 2), [first, second]);
    assert.deepEqual(errorMessages(reported(server.errors)), [
      first.message,
      second.message,
      'tinybase:14',
    ]);
  },
);

for (const [how, fail] of [
  [
    'throws synchronously',
    (error) => {
      throw error;
    },
  ],
  ['returns a rejected promise', (error) => Promise.reject(error)],
]) {
  test(
    `a persister factory that ${how} is reported; other paths keep relaying`,
    options,
    async (t) => {
      const error = new Error(`factory failure (${how})`);
      const {createPersisterForPath, stores} = factory((pathId) =>
        pathId === 'faulty' ? fail(error) : undefined,
      );
      const server = await startServer(t, {createPersisterForPath});
      const dropped = await openRaw(t, server, 'faulty', {expectJoin: false});
      await waitForReported(server, error);
      await waitFor(
        () => !server.wsServer.getPathIds().includes('faulty'),
        'the failed path to go',
      );
      // Dropped from its path, not closed: TinyBase leaves the socket to its owner.
      assert.equal(dropped.webSocket.readyState, WebSocket.OPEN);
      await assertRelays(t, server, 'healthy', stores);
      assert.deepEqual(reported(server.errors), [error]);
    },
  );
}

test(
  'a persister factory that resolves late holds only its own path, then releases it',
  options,
  async (t) => {
    const late = gate();
    defer(t, () => late.open());
    const {createPersisterForPath, stores, storage} = factory((pathId) =>
      pathId === 'slow'
        ? late.promise.then(() => {
            const persister = createMemoryPersister({pathId, storage});
            stores.set(pathId, persister.store);
            return persister;
          })
        : undefined,
    );
    // Held messages expire after ten request timeouts: 30 s here, far beyond what this test waits
    // before resolving the factory.
    const server = await startServer(t, {
      createPersisterForPath,
      requestTimeoutSeconds: 3,
    });
    const slow = await Promise.all([
      openClient(t, server.url('slow'), {start: false}),
      openClient(t, server.url('slow'), {start: false}),
    ]);
    slow[0].store.setCell('t', 'x', 'c', 'x');
    slow[1].store.setCell('t', 'y', 'c', 'y');
    // Each start gives up waiting for an answer after its own timeout; its requests stay held.
    await withTimeout(
      Promise.all(slow.map(({synchronizer}) => synchronizer.startSync())),
      'the slow path clients to start',
    );

    await assertRelays(t, server, 'healthy', stores);

    // Still held: the slow path's clients joined but nothing passed between them.
    assert.equal(server.wsServer.getClientIds('slow').length, 2);
    assert.deepEqual(plain(slow[0].store.getTables()), {t: {x: {c: 'x'}}});
    assert.deepEqual(plain(slow[1].store.getTables()), {t: {y: {c: 'y'}}});
    assert.equal(stores.has('slow'), false);

    late.open();
    const expected = {t: {x: {c: 'x'}, y: {c: 'y'}}};
    await waitForEqual(
      () => slow[0].store.getTables(),
      expected,
      'slow client 0',
    );
    await waitForEqual(
      () => slow[1].store.getTables(),
      expected,
      'slow client 1',
    );
    await waitForEqual(
      () => stores.get('slow')?.getTables(),
      expected,
      "the slow path's store",
    );
    assert.deepEqual(reported(server.errors), []);
  },
);

test(
  'a persister whose startAutoLoad rejects is reported; other paths keep relaying',
  options,
  async (t) => {
    const error = new Error('load failure');
    const {createPersisterForPath, stores} = factory((pathId) =>
      pathId === 'faulty'
        ? createMemoryPersister({
            pathId,
            hooks: {startAutoLoad: () => Promise.reject(error)},
          })
        : undefined,
    );
    const server = await startServer(t, {createPersisterForPath});
    await openRaw(t, server, 'faulty', {expectJoin: false});
    await waitForReported(server, error);
    await waitFor(
      () => !server.wsServer.getPathIds().includes('faulty'),
      'the failed path to go',
    );
    await assertRelays(t, server, 'healthy', stores);
    assert.deepEqual(reported(server.errors), [error]);
  },
);

test(
  'a persister whose destroy rejects is reported, and its path still goes',
  options,
  async (t) => {
    const error = new Error('destroy failure');
    let destroys = 0;
    const {createPersisterForPath, stores, storage} = factory(
      (pathId, sharedStorage) => {
        if (pathId !== 'faulty') {
          return undefined;
        }
        const persister = createMemoryPersister({
          pathId,
          storage: sharedStorage,
          hooks: {
            // Only the first teardown fails, so the restarted path below can be torn down cleanly.
            destroy: () =>
              destroys++ === 0 ? Promise.reject(error) : undefined,
          },
        });
        stores.set(pathId, persister.store);
        return persister;
      },
    );
    const server = await startServer(t, {createPersisterForPath});
    const client = await openClient(t, server.url('faulty'));
    client.store.setCell('t', 'saved', 'c', 1);
    await waitFor(() => storage.has('faulty'), 'the faulty path to save');
    await waitForEqual(
      () => stores.get('faulty')?.getTables(),
      {t: {saved: {c: 1}}},
      'the save',
    );
    await client.synchronizer.destroy();
    client.webSocket.close();
    await waitForReported(server, error);
    await waitFor(
      () => !server.wsServer.getPathIds().includes('faulty'),
      'the path to go',
    );
    assert.deepEqual(server.wsServer.getStats(), {paths: 0, clients: 0});

    await assertRelays(t, server, 'healthy', stores);
    // The path id is not wedged: a new client starts it afresh and gets what was saved.
    const again = await openClient(t, server.url('faulty'));
    await waitForEqual(
      () => again.store.getTables(),
      {t: {saved: {c: 1}}},
      'the restarted path',
    );
    assert.deepEqual(reported(server.errors), [error]);
  },
);

test(
  'a then(store) callback that throws is reported; other paths keep relaying',
  options,
  async (t) => {
    const error = new Error('then failure');
    const {createPersisterForPath, stores} = factory((pathId) =>
      pathId === 'faulty'
        ? [
            createMemoryPersister({pathId}),
            () => {
              throw error;
            },
          ]
        : undefined,
    );
    const server = await startServer(t, {createPersisterForPath});
    await openRaw(t, server, 'faulty', {expectJoin: false});
    await waitForReported(server, error);
    await waitFor(
      () => !server.wsServer.getPathIds().includes('faulty'),
      'the failed path to go',
    );
    await assertRelays(t, server, 'healthy', stores);
    assert.deepEqual(reported(server.errors), [error]);
  },
);

test(
  'a client whose invalid message is followed by a frame that is not UTF-8 still gets its 1007',
  // A socket dropped with the peer's frames unread would be reset, and the peer would lose the
  // Close it had not read yet (1006).
  options,
  async (t) => {
    const server = await startServer(t);
    // Each attempt loses the race only most of the time: a few make the failure certain.
    for (let attempt = 0; attempt < 10; attempt++) {
      const raw = await openRaw(t, server, `malformed-${attempt}`);
      raw.send('not a sync message');
      for (let frame = 0; frame < 10; frame++) {
        raw.webSocket.send(Buffer.from([0x0a, 0x5b, 0xff, 0xfe, 0x5d]), {
          binary: false,
        });
      }
      assert.deepEqual(
        await withTimeout(raw.closed, `attempt ${attempt}'s close`),
        {code: 1007, reason: 'tinybase:14'},
        `attempt ${attempt}`,
      );
    }
    await assertRelays(t, server, 'healthy');
  },
);

// How long a blocking listener holds the JS thread at most. It normally lets go as soon as the
// child process says its messages arrived; the bound only keeps a broken relay from hanging.
const BLOCK_BOUND_MS = 30_000;

// Holds the JS thread (as a listener doing slow work would) until the child process of
// `relayWhileBlocked` reports through a file, which it can check without the event loop, whether
// the messages of its clients on another path arrived in the meantime. `outcome.endedBy` says
// how the hold ended.
const holdUntilChildReports = (dir, outcome) => {
  writeFileSync(join(dir, 'blocked'), '');
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const deadline = Date.now() + BLOCK_BOUND_MS;
  while (!existsSync(join(dir, 'done')) && Date.now() < deadline) {
    // Holds this thread without spinning a core the plane's threads need.
    Atomics.wait(pause, 0, 0, 5);
  }
  outcome.endedBy = existsSync(join(dir, 'done'))
    ? 'the child'
    : 'the deadline';
  writeFileSync(join(dir, 'released'), '');
};

// A path ids listener that holds the JS thread when path 'blocker' changes by `change`.
const blockOn = (server, dir, change) => {
  const outcome = {endedBy: undefined};
  server.wsServer.addPathIdsListener((_, pathId, pathChange) => {
    if (pathId === 'blocker' && pathChange === change) {
      holdUntilChildReports(dir, outcome);
    }
  });
  return outcome;
};

// Runs the fixture's clients against `server` and returns what the child process reported.
const relayWhileBlocked = async (t, server, dir, mode) => {
  const fixture = fileURLToPath(
    new URL('fixtures/faults/relay-while-blocked.js', import.meta.url),
  );
  const child = spawn(process.execPath, [fixture, server.url(''), dir, mode], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (data) => (stdout += data));
  child.stderr.on('data', (data) => (stderr += data));
  const exited = once(child, 'exit');
  defer(t, async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  const [code] = await withTimeout(exited, 'the child process to exit', 90_000);
  assert.equal(stderr, '');
  assert.equal(code, 0);
  return JSON.parse(stdout);
};

const RELAYED_WHILE_BLOCKED = {
  relayedBefore: true,
  sawBlock: true,
  relayedDuring: true,
  stillBlocked: true,
};

// TinyBase's own server relays on the JS thread, so nothing relays while it is blocked.
const nativeOnly =
  implementation === 'reference'
    ? "TinyBase's own server relays on the JS thread"
    : false;

test(
  'while a listener blocks the JS thread on a leaving client, other paths keep relaying natively',
  {...options, skip: nativeOnly},
  async (t) => {
    const server = await startServer(t);
    const dir = tempDir(t);
    const outcome = blockOn(server, dir, -1);
    assert.deepEqual(
      await relayWhileBlocked(t, server, dir, 'leave'),
      RELAYED_WHILE_BLOCKED,
    );
    assert.equal(outcome.endedBy, 'the child');
    await assertRelays(t, server, 'healthy');
    assert.deepEqual(reported(server.errors), []);
  },
);

test(
  'while a listener blocks the JS thread on a joining client, other paths keep relaying natively',
  {...options, skip: nativeOnly},
  async (t) => {
    const server = await startServer(t);
    const dir = tempDir(t);
    const outcome = blockOn(server, dir, 1);
    assert.deepEqual(
      await relayWhileBlocked(t, server, dir, 'join'),
      RELAYED_WHILE_BLOCKED,
    );
    assert.equal(outcome.endedBy, 'the child');
    await assertRelays(t, server, 'healthy');
    assert.deepEqual(reported(server.errors), []);
  },
);

test(
  "while a user's 'connection' listener blocks the JS thread, other paths keep relaying natively",
  {...options, skip: nativeOnly},
  async (t) => {
    const dir = tempDir(t);
    const outcome = {endedBy: undefined};
    // Added before createWsServer, so it runs before the server has registered the connection.
    const server = await startServer(t, {
      beforeCreate: (webSocketServer) =>
        webSocketServer.on('connection', (_, request) => {
          if (request.url === '/blocker') {
            holdUntilChildReports(dir, outcome);
          }
        }),
    });
    assert.deepEqual(
      await relayWhileBlocked(t, server, dir, 'join'),
      RELAYED_WHILE_BLOCKED,
    );
    assert.equal(outcome.endedBy, 'the child');
    await assertRelays(t, server, 'healthy');
    assert.deepEqual(reported(server.errors), []);
  },
);
