import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import {once} from 'node:events';
import {createServer} from 'node:http';
import test from 'node:test';
import {fileURLToPath} from 'node:url';
import {WebSocket, WebSocketServer} from 'ws';
import {
  TEST_TIMEOUT_MS,
  closeOf,
  defer,
  errorMessages,
  openClient,
  openRaw,
  startServer,
  waitFor,
  waitForEqual,
  withTimeout,
} from './support/harness.js';
import {createWsServer} from './support/implementation.js';

const options = {timeout: TEST_TIMEOUT_MS};

const recordListeners = (wsServer, pathId = null) => {
  const events = [];
  wsServer.addPathIdsListener((server, ...args) => {
    assert.equal(server, wsServer);
    events.push(['path', ...args]);
  });
  wsServer.addClientIdsListener(pathId, (server, ...args) => {
    assert.equal(server, wsServer);
    events.push(['client', ...args]);
  });
  return events;
};

// Connects a socket that is expected to be refused during the handshake.
const refusedStatus = (url) =>
  withTimeout(
    new Promise((resolve) => {
      const webSocket = new WebSocket(url);
      webSocket.on('unexpected-response', (_, response) => {
        resolve(response.statusCode);
        webSocket.terminate();
      });
      webSocket.on('error', (error) => resolve(error.code ?? error.message));
      webSocket.on('open', () => {
        resolve('open');
        webSocket.terminate();
      });
    }),
    'the handshake to be refused',
  );

test(
  'the returned object is frozen and has exactly the WsServer API',
  options,
  async (t) => {
    const server = await startServer(t);
    assert.ok(Object.isFrozen(server.wsServer));
    assert.deepEqual(Object.keys(server.wsServer).sort(), [
      'addClientIdsListener',
      'addPathIdsListener',
      'delListener',
      'destroy',
      'getClientIds',
      'getPathIds',
      'getStats',
      'getWebSocketServer',
    ]);
    assert.equal(server.wsServer.getWebSocketServer(), server.webSocketServer);
  },
);

test(
  'path ids, client ids and stats follow connects and disconnects',
  options,
  async (t) => {
    const server = await startServer(t);
    const {wsServer} = server;
    assert.deepEqual(wsServer.getPathIds(), []);
    assert.deepEqual(wsServer.getClientIds('p1'), []);
    assert.deepEqual(wsServer.getStats(), {paths: 0, clients: 0});

    const a = await openRaw(t, server, 'p1');
    assert.deepEqual(wsServer.getPathIds(), ['p1']);
    assert.deepEqual(wsServer.getClientIds('p1'), [a.id]);
    assert.deepEqual(wsServer.getStats(), {paths: 1, clients: 1});

    const b = await openRaw(t, server, 'p1');
    const c = await openRaw(t, server, 'p2');
    assert.deepEqual(wsServer.getPathIds(), ['p1', 'p2']);
    assert.deepEqual(wsServer.getClientIds('p1'), [a.id, b.id]);
    assert.deepEqual(wsServer.getClientIds('p2'), [c.id]);
    assert.deepEqual(wsServer.getClientIds('p3'), []);
    assert.deepEqual(wsServer.getStats(), {paths: 2, clients: 3});

    a.webSocket.close();
    await waitForEqual(() => wsServer.getClientIds('p1'), [b.id], 'a to leave');
    assert.deepEqual(wsServer.getStats(), {paths: 2, clients: 2});
    b.webSocket.close();
    await waitForEqual(() => wsServer.getPathIds(), ['p2'], 'p1 to go');
    assert.deepEqual(wsServer.getStats(), {paths: 1, clients: 1});
    c.webSocket.close();
    await waitForEqual(
      () => wsServer.getStats(),
      {paths: 0, clients: 0},
      'all gone',
    );
  },
);

test(
  'the path id is the URL path after the first slash, without the query',
  options,
  async (t) => {
    const server = await startServer(t);
    const cases = [
      ['', ''],
      ['petShop', 'petShop'],
      ['a/b/c', 'a/b/c'],
      ['a/b?x=1&y=/z', 'a/b'],
      ['?only=query', ''],
      ['/double', '/double'],
      ['with%20space', 'with%20space'],
      ['trailing/', 'trailing/'],
    ];
    for (const [path, pathId] of cases) {
      const raw = await openRaw(t, server, path, {pathId});
      assert.ok(server.wsServer.getClientIds(pathId).includes(raw.id), path);
      raw.webSocket.close();
      await raw.closed;
      await waitFor(
        () => !server.wsServer.getPathIds().includes(pathId),
        `${pathId} to go`,
      );
    }
  },
);

test(
  'the client id is the Sec-WebSocket-Key of the connection',
  options,
  async (t) => {
    const keys = [];
    const server = await startServer(t, {
      beforeCreate: (webSocketServer) =>
        webSocketServer.on('connection', (_, request) =>
          keys.push(request.headers['sec-websocket-key']),
        ),
    });
    const raw = await openRaw(t, server, 'keys');
    assert.deepEqual(keys, [raw.id]);
  },
);

test(
  'path and client listeners get their arguments in order',
  options,
  async (t) => {
    const server = await startServer(t);
    const events = recordListeners(server.wsServer);
    const a = await openRaw(t, server, 'listen');
    const b = await openRaw(t, server, 'listen');
    assert.deepEqual(events, [
      ['path', 'listen', 1],
      ['client', 'listen', a.id, 1],
      ['client', 'listen', b.id, 1],
    ]);
    events.length = 0;
    b.webSocket.close();
    await waitFor(() => events.length === 1, 'b to leave');
    a.webSocket.close();
    await waitFor(() => events.length === 3, 'a and the path to go');
    assert.deepEqual(events, [
      ['client', 'listen', b.id, -1],
      ['client', 'listen', a.id, -1],
      ['path', 'listen', -1],
    ]);
  },
);

test(
  'a client listener for one path ignores others; null listens to all',
  options,
  async (t) => {
    const server = await startServer(t);
    const one = [];
    const all = [];
    server.wsServer.addClientIdsListener('one', (_, ...args) => one.push(args));
    server.wsServer.addClientIdsListener(null, (_, ...args) => all.push(args));
    const a = await openRaw(t, server, 'one');
    const b = await openRaw(t, server, 'two');
    assert.deepEqual(one, [['one', a.id, 1]]);
    assert.deepEqual(all, [
      ['one', a.id, 1],
      ['two', b.id, 1],
    ]);
  },
);

test(
  'listener ids come from one pool, are strings, and are reused first-freed-first',
  options,
  async (t) => {
    const {wsServer} = await startServer(t);
    const noop = () => {};
    assert.equal(wsServer.addPathIdsListener(noop), '0');
    assert.equal(wsServer.addClientIdsListener('p', noop), '1');
    assert.equal(wsServer.addClientIdsListener(null, noop), '2');
    assert.equal(wsServer.delListener('2'), wsServer);
    assert.equal(wsServer.delListener('0'), wsServer);
    assert.equal(wsServer.addPathIdsListener(noop), '2');
    assert.equal(wsServer.addPathIdsListener(noop), '0');
    assert.equal(wsServer.addPathIdsListener(noop), '3');
    assert.equal(wsServer.delListener('unknown'), wsServer);
    assert.equal(wsServer.delListener('3'), wsServer);
    assert.equal(wsServer.delListener('3'), wsServer);
    assert.equal(wsServer.addPathIdsListener(noop), '3');
    assert.equal(wsServer.addPathIdsListener(noop), '4');
  },
);

test('a removed listener is not called again', options, async (t) => {
  const server = await startServer(t);
  const calls = [];
  const pathListener = server.wsServer.addPathIdsListener((_, pathId) =>
    calls.push(pathId),
  );
  const clientListener = server.wsServer.addClientIdsListener(
    null,
    (_, pathId) => calls.push(`client ${pathId}`),
  );
  await openRaw(t, server, 'before');
  server.wsServer.delListener(pathListener).delListener(clientListener);
  await openRaw(t, server, 'after');
  assert.deepEqual(calls, ['before', 'client before']);
});

test(
  'a throwing listener reports its very Error; later listeners still run',
  options,
  async (t) => {
    const server = await startServer(t);
    const pathError = new Error('path listener failure');
    const clientError = new Error('client listener failure');
    const calls = [];
    server.wsServer.addPathIdsListener(() => {
      throw pathError;
    });
    server.wsServer.addPathIdsListener((_, pathId) =>
      calls.push(['path', pathId]),
    );
    server.wsServer.addClientIdsListener(null, () => {
      throw clientError;
    });
    server.wsServer.addClientIdsListener(null, (_, pathId) =>
      calls.push(['client', pathId]),
    );
    const raw = await openRaw(t, server, 'throwing');
    assert.deepEqual(calls, [
      ['path', 'throwing'],
      ['client', 'throwing'],
    ]);
    assert.equal(server.errors.length, 2);
    assert.equal(server.errors[0], pathError);
    assert.equal(server.errors[1], clientError);
    // The client joined regardless and its traffic is still relayed.
    raw.send(`${raw.id}\n["self",1,""]`);
    await raw.receive(
      ({requestId}) => requestId === 'self',
      'self-addressed message',
    );
  },
);

test(
  'when several listeners throw for one change only the first error is reported',
  options,
  async (t) => {
    const server = await startServer(t);
    const first = new Error('first');
    server.wsServer.addPathIdsListener(() => {
      throw first;
    });
    server.wsServer.addPathIdsListener(() => {
      throw new Error('second');
    });
    await openRaw(t, server, 'twice');
    assert.deepEqual(server.errors, [first]);
  },
);

test('a throwing onIgnoredError is contained', options, async (t) => {
  const server = await startServer(t, {
    onIgnoredError: () => {
      throw new Error('handler failure');
    },
  });
  server.wsServer.addPathIdsListener(() => {
    throw new Error('listener failure');
  });
  const [client1, client2] = await Promise.all([
    openClient(t, server.url('contained')),
    openClient(t, server.url('contained')),
  ]);
  client1.store.setValue('v', 1);
  await waitForEqual(() => client2.store.getValues(), {v: 1}, 'sync');
  assert.deepEqual(errorMessages(server.errors), ['listener failure']);
});

test(
  'counts and listeners are up to date synchronously inside the connection event',
  options,
  async (t) => {
    const server = await startServer(t);
    const events = recordListeners(server.wsServer);
    const seen = [];
    server.webSocketServer.on('connection', (_, request) => {
      const clientId = request.headers['sec-websocket-key'];
      seen.push({
        clientIds: server.wsServer.getClientIds('sync'),
        stats: server.wsServer.getStats(),
        events: [...events],
        clientId,
      });
    });
    const raw = await openRaw(t, server, 'sync');
    assert.deepEqual(seen, [
      {
        clientIds: [raw.id],
        stats: {paths: 1, clients: 1},
        events: [
          ['path', 'sync', 1],
          ['client', 'sync', raw.id, 1],
        ],
        clientId: raw.id,
      },
    ]);
  },
);

test(
  "a connection listener added before createWsServer runs before the server's own",
  options,
  async (t) => {
    const seen = [];
    let wsServer;
    const server = await startServer(t, {
      beforeCreate: (webSocketServer) =>
        webSocketServer.on('connection', () => seen.push(wsServer.getStats())),
    });
    wsServer = server.wsServer;
    await openRaw(t, server, 'early');
    assert.deepEqual(seen, [{paths: 0, clients: 0}]);
  },
);

test(
  "the user's connection listener sees the request and its remote address",
  options,
  async (t) => {
    const seen = [];
    const server = await startServer(t, {
      beforeCreate: (webSocketServer) =>
        webSocketServer.on('connection', (client, request) =>
          seen.push([
            request.socket.remoteAddress,
            request.url,
            typeof client.send,
          ]),
        ),
    });
    await openRaw(t, server, 'who?am=i');
    assert.deepEqual(seen, [['127.0.0.1', '/who?am=i', 'function']]);
  },
);

test('verifyClient can still refuse connections', options, async (t) => {
  const server = await startServer(t, {
    options: {verifyClient: ({req}) => !req.url.startsWith('/forbidden')},
  });
  assert.equal(await refusedStatus(server.url('forbidden')), 401);
  assert.deepEqual(server.wsServer.getStats(), {paths: 0, clients: 0});
  const [client1, client2] = await Promise.all([
    openClient(t, server.url('allowed')),
    openClient(t, server.url('allowed')),
  ]);
  client1.store.setValue('v', 'ok');
  await waitForEqual(
    () => client2.store.getValues(),
    {v: 'ok'},
    'allowed path to sync',
  );
  assert.deepEqual(server.wsServer.getPathIds(), ['allowed']);
});

test(
  "ws's path option limits the accepted URL, and the path id follows it",
  options,
  async (t) => {
    const server = await startServer(t, {options: {path: '/sync'}});
    assert.equal(await refusedStatus(server.url('other')), 400);
    const raw = await openRaw(t, server, 'sync?room=1', {pathId: 'sync'});
    assert.deepEqual(server.wsServer.getClientIds('sync'), [raw.id]);
    assert.deepEqual(server.wsServer.getPathIds(), ['sync']);
  },
);

test(
  'a noServer WebSocketServer fed by handleUpgrade on an http server works',
  options,
  async (t) => {
    const httpServer = createServer((_, response) =>
      response.end('plain http'),
    );
    defer(t, () => new Promise((resolve) => httpServer.close(() => resolve())));
    httpServer.listen(0, '127.0.0.1');
    await once(httpServer, 'listening');
    const server = await startServer(t, {options: {noServer: true}});
    httpServer.on('upgrade', (request, socket, head) =>
      server.webSocketServer.handleUpgrade(request, socket, head, (client) =>
        server.webSocketServer.emit('connection', client, request),
      ),
    );
    const url = `ws://127.0.0.1:${httpServer.address().port}/upgraded`;
    const [client1, client2] = await Promise.all([
      openClient(t, url),
      openClient(t, url),
    ]);
    client1.store.setCell('t', 'r', 'c', 1);
    await waitForEqual(
      () => client2.store.getTables(),
      {t: {r: {c: 1}}},
      'sync',
    );
    assert.deepEqual(server.wsServer.getStats(), {paths: 1, clients: 2});
    await withTimeout(server.wsServer.destroy(), 'destroy');
    assert.deepEqual(server.wsServer.getStats(), {paths: 0, clients: 0});
  },
);

test(
  'destroy closes every client and the server, stops paths, and resolves',
  options,
  async (t) => {
    const server = await startServer(t);
    const events = recordListeners(server.wsServer);
    const a = await openRaw(t, server, 'd1');
    const b = await openRaw(t, server, 'd2');
    const client = await openClient(t, server.url('d2'));
    events.length = 0;
    const destroyed = server.wsServer.destroy();
    assert.equal(server.wsServer.destroy(), destroyed);
    assert.equal(await withTimeout(destroyed, 'destroy'), undefined);
    // TinyBase's client closes without a code, which arrives as 1005.
    assert.deepEqual(await a.closed, {code: 1005, reason: ''});
    assert.deepEqual(await b.closed, {code: 1005, reason: ''});
    assert.deepEqual((await client.closed).code, 1005);
    assert.deepEqual(server.wsServer.getPathIds(), []);
    assert.deepEqual(server.wsServer.getStats(), {paths: 0, clients: 0});
    // Paths end with -1 events; their clients are dropped without client events.
    assert.deepEqual(events.sort(), [
      ['path', 'd1', -1],
      ['path', 'd2', -1],
    ]);
    assert.equal(await refusedStatus(server.url('d1')), 'ECONNREFUSED');
    await withTimeout(server.wsServer.destroy(), 'second destroy');
    assert.deepEqual(server.errors, []);
  },
);

test(
  'destroy rejects with the very error that closing the WebSocketServer throws',
  options,
  async (t) => {
    const failure = new Error('close failure');
    const server = await startServer(t);
    const raw = await openRaw(t, server, 'thrown');
    server.webSocketServer.close = () => {
      throw failure;
    };
    await assert.rejects(
      withTimeout(server.wsServer.destroy(), 'destroy'),
      (error) => error === failure,
    );
    assert.equal((await raw.closed).code, 1005);
    assert.deepEqual(server.wsServer.getStats(), {paths: 0, clients: 0});
  },
);

test(
  'destroy rejects with the error the WebSocketServer passes to its close callback',
  options,
  async (t) => {
    const failure = new Error('callback failure');
    const server = await startServer(t);
    const close = server.webSocketServer.close.bind(server.webSocketServer);
    server.webSocketServer.close = (callback) => close(() => callback(failure));
    await assert.rejects(
      withTimeout(server.wsServer.destroy(), 'destroy'),
      (error) => error === failure,
    );
  },
);

test(
  'destroy of a server whose WebSocketServer is already closed rejects with ws’s error',
  options,
  async (t) => {
    const server = await startServer(t);
    server.webSocketServer.close();
    await once(server.webSocketServer, 'close');
    await assert.rejects(withTimeout(server.wsServer.destroy(), 'destroy'), {
      message: 'The server is not running',
    });
  },
);

test(
  'destroy removes its own listeners and nobody else’s',
  options,
  async (t) => {
    const userServerListeners = {
      connection: () => {},
      error: () => {},
      close: () => {},
    };
    const userClientListener = () => {};
    let serverSide;
    const before = {};
    const serverSideBefore = {};
    const server = await startServer(t, {
      beforeCreate: (webSocketServer) => {
        for (const [event, listener] of Object.entries(userServerListeners)) {
          webSocketServer.on(event, listener);
        }
        webSocketServer.on('connection', (client) => {
          serverSide = client;
          client.on('message', userClientListener);
          client.on('close', userClientListener);
          client.on('error', userClientListener);
          // ws tracks its clients with a close listener of its own.
          for (const event of ['message', 'close', 'error']) {
            serverSideBefore[event] = client.listeners(event);
          }
        });
        for (const event of [
          'connection',
          'error',
          'close',
          'listening',
          'headers',
        ]) {
          before[event] = webSocketServer.listeners(event);
        }
      },
    });
    await openRaw(t, server, 'listeners');
    assert.ok(
      serverSide.listenerCount('message') > serverSideBefore.message.length,
    );
    assert.ok(
      server.webSocketServer.listenerCount('connection') >
        before.connection.length,
    );
    await withTimeout(server.wsServer.destroy(), 'destroy');
    for (const event of [
      'connection',
      'error',
      'close',
      'listening',
      'headers',
    ]) {
      assert.deepEqual(
        server.webSocketServer.listeners(event),
        before[event],
        event,
      );
    }
    for (const event of ['message', 'close', 'error']) {
      assert.deepEqual(
        serverSide.listeners(event),
        serverSideBefore[event],
        event,
      );
    }
  },
);

test(
  'destroy of an idle server resolves and leaves nothing running',
  options,
  async (t) => {
    const server = await startServer(t);
    await withTimeout(server.wsServer.destroy(), 'destroy');
    assert.equal(await refusedStatus(server.url()), 'ECONNREFUSED');
  },
);

test(
  'createWsServer works on a WebSocketServer that is not yet listening',
  options,
  async (t) => {
    const webSocketServer = new WebSocketServer({host: '127.0.0.1', port: 0});
    const wsServer = createWsServer(webSocketServer);
    defer(t, () => withTimeout(wsServer.destroy(), 'destroy'));
    await once(webSocketServer, 'listening');
    const url = `ws://127.0.0.1:${webSocketServer.address().port}/early`;
    const [client1, client2] = await Promise.all([
      openClient(t, url),
      openClient(t, url),
    ]);
    client2.store.setValue('v', 2);
    await waitForEqual(() => client1.store.getValues(), {v: 2}, 'sync');
  },
);

test(
  'a process that syncs two clients and destroys its server exits by itself',
  options,
  async () => {
    const fixture = fileURLToPath(
      new URL('fixtures/sync-and-destroy.js', import.meta.url),
    );
    const child = spawn(process.execPath, [fixture], {
      env: process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (data) => (output += data));
    child.stderr.on('data', (data) => (output += data));
    const exited = once(child, 'exit');
    try {
      const [code, signal] = await withTimeout(
        exited,
        'the child process to exit',
        30_000,
      );
      assert.deepEqual(
        {code, signal, output},
        {code: 0, signal: null, output: 'converged\n'},
      );
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    }
  },
);
