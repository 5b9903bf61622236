import {spawn} from 'node:child_process';
import {once} from 'node:events';
import {STATUS_CODES, createServer} from 'node:http';
import {setTimeout as delay} from 'node:timers/promises';
import {isDeepStrictEqual} from 'node:util';
import {WebSocket, WebSocketServer} from 'ws';
import {createMergeableStore} from 'tinybase';
import {createWsSynchronizer} from 'tinybase/synchronizers/synchronizer-ws-client';
import {getListenAddress} from '../../index.js';
import {createWsServer, listensNatively} from './implementation.js';

// Bounds that only turn a hang into a failure: nothing waits for them to pass.
export const WAIT_MS = 20_000;
export const TEST_TIMEOUT_MS = 60_000;

// node:test runs t.after hooks in registration order; resources must be
// released in reverse (clients before the server they talk to), so each test
// gets one stack unwound by a single hook.
const stacks = new WeakMap();
export const defer = (t, release) => {
  let stack = stacks.get(t);
  if (!stack) {
    stacks.set(t, (stack = []));
    t.after(async () => {
      const failures = [];
      while (stack.length) {
        try {
          await stack.pop()();
        } catch (error) {
          failures.push(error);
        }
      }
      if (failures.length) {
        throw failures[0];
      }
    });
  }
  stack.push(release);
};

export const withTimeout = (promise, what, ms = WAIT_MS) => {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`timed out after ${ms}ms waiting for ${what}`)),
        ms,
      );
    }),
  ]).finally(() => clearTimeout(timer));
};

// Polls until `condition` returns something truthy and returns it; the bound
// exists only so that a missing event fails instead of hanging the suite.
export const waitFor = async (condition, what = 'condition', ms = WAIT_MS) => {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await condition();
    if (value) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms}ms waiting for ${what}`);
    }
    await delay(5);
  }
};

// TinyBase hands out null-prototype objects, which deep equality would tell
// apart from literals; comparing through JSON compares content only.
export const plain = (value) =>
  value === undefined ? undefined : JSON.parse(JSON.stringify(value));

export const waitForEqual = async (get, expected, what = 'value') => {
  let last;
  try {
    await waitFor(
      () => isDeepStrictEqual((last = plain(get())), expected),
      what,
    );
  } catch (error) {
    error.message += `; last seen ${JSON.stringify(last)}, expected ${JSON.stringify(expected)}`;
    throw error;
  }
};

export const gate = () => {
  let open;
  const promise = new Promise((resolve) => (open = resolve));
  return {promise, open};
};

// What ws's own HTTP server answers a request that is no upgrade.
const upgradeRequired = (_request, response) => {
  const body = STATUS_CODES[426];
  response.writeHead(426, {
    'Content-Length': body.length,
    'Content-Type': 'text/plain',
  });
  response.end(body);
};

export const startServer = async (
  t,
  {
    createPersisterForPath,
    requestTimeoutSeconds,
    fragmentSize,
    options = {},
    beforeCreate,
    onIgnoredError,
  } = {},
) => {
  const ownServer = !options.noServer && !options.server;
  // The plane listens itself, for a server that answers what it hands over as ws's own would.
  const listening = ownServer && listensNatively;
  const webSocketServer = new WebSocketServer(
    !ownServer
      ? options
      : listening
        ? {server: createServer(upgradeRequired), ...options}
        : {host: '127.0.0.1', port: 0, ...options},
  );
  defer(t, () => closeWebSocketServer(webSocketServer));
  if (ownServer && !listening) {
    await withTimeout(once(webSocketServer, 'listening'), 'listening');
  }
  beforeCreate?.(webSocketServer);
  const errors = [];
  const wsServer = createWsServer(
    webSocketServer,
    createPersisterForPath,
    (error) => {
      errors.push(error);
      onIgnoredError?.(error);
    },
    requestTimeoutSeconds,
    fragmentSize,
    ...(listening ? [{listen: {port: 0, host: '127.0.0.1'}}] : []),
  );
  defer(t, () =>
    withTimeout(
      wsServer.destroy().catch(() => {}),
      'wsServer.destroy() in cleanup',
    ),
  );
  const port = options.noServer
    ? undefined
    : listening
      ? getListenAddress(wsServer).port
      : (options.server ?? webSocketServer).address().port;
  return {
    webSocketServer,
    wsServer,
    errors,
    port,
    url: (path = '') => `ws://127.0.0.1:${port}/${path}`,
  };
};

// The test may already have closed it, or replaced its close to fail; either
// way the listening socket must not outlive the test.
const closeWebSocketServer = (webSocketServer) =>
  withTimeout(
    new Promise((resolve) => {
      try {
        WebSocketServer.prototype.close.call(webSocketServer, () => resolve());
      } catch {
        resolve();
      }
    }),
    'WebSocketServer close in cleanup',
  );

// Must be called before the socket can have closed.
export const closeOf = (webSocket) =>
  new Promise((resolve) =>
    webSocket.once('close', (code, reason) =>
      resolve({code, reason: reason.toString()}),
    ),
  );

const closeWebSocket = async (webSocket) => {
  if (webSocket.readyState !== WebSocket.CLOSED) {
    const closed = closeOf(webSocket);
    webSocket.close();
    try {
      await withTimeout(closed, 'client socket close', 5_000);
    } catch {
      webSocket.terminate();
    }
  }
};

// A real TinyBase client. `channelId` selects the multiplexed protocol, in
// which case the socket must offer the 'tinybase' subprotocol (and may be
// shared with other channels by passing `webSocket`).
export const openClient = async (
  t,
  url,
  {
    store = createMergeableStore(),
    channelId,
    webSocket = new WebSocket(url, channelId === undefined ? [] : ['tinybase']),
    requestTimeoutSeconds = 1,
    fragmentSize,
    start = true,
  } = {},
) => {
  webSocket.on('error', () => {});
  defer(t, () => closeWebSocket(webSocket));
  const closed = closeOf(webSocket);
  const errors = [];
  const onIgnoredError = (error) => errors.push(error);
  const synchronizer = await withTimeout(
    channelId === undefined
      ? createWsSynchronizer(
          store,
          webSocket,
          requestTimeoutSeconds,
          undefined,
          undefined,
          onIgnoredError,
          fragmentSize,
        )
      : createWsSynchronizer(
          store,
          webSocket,
          channelId,
          requestTimeoutSeconds,
          undefined,
          undefined,
          onIgnoredError,
          fragmentSize,
        ),
    'createWsSynchronizer',
  );
  defer(t, () => synchronizer.destroy());
  if (start) {
    await withTimeout(synchronizer.startSync(), 'startSync');
  }
  return {store, synchronizer, webSocket, errors, closed};
};

// A bare ws client for traffic TinyBase's client would never send. It records
// every message and its close; `id` is the client id the server gave it,
// learnt from the server's own view of the path, so raw clients of one path
// must be connected one at a time.
export const openRaw = async (
  t,
  server,
  path,
  {
    protocols = [],
    pathId = path.split('?')[0],
    expectJoin = true,
    // ws's client options, e.g. perMessageDeflate to keep the server's socket in JS.
    options,
  } = {},
) => {
  const before = new Set(server.wsServer.getClientIds(pathId));
  const webSocket = new WebSocket(server.url(path), protocols, options);
  webSocket.on('error', () => {});
  defer(t, () => closeWebSocket(webSocket));
  const messages = [];
  webSocket.on('message', (data) => messages.push(data.toString()));
  const closed = closeOf(webSocket);
  await withTimeout(once(webSocket, 'open'), 'raw client open');
  const id = expectJoin
    ? await waitFor(
        () =>
          server.wsServer
            .getClientIds(pathId)
            .find((clientId) => !before.has(clientId)),
        `raw client to join path '${pathId}'`,
      )
    : undefined;
  return {
    webSocket,
    id,
    messages,
    closed,
    send: (payload) => webSocket.send(payload),
    // Resolves with the first received payload (parsed) that `match` accepts.
    receive: (match = () => true, what = 'a matching message') =>
      waitFor(() => messages.map(parse).find(match), what),
  };
};

export const payload = (toClientId, requestId, message, body) =>
  `${toClientId}\n${JSON.stringify([requestId, message, body])}`;

// Splits a received payload into its sender and protocol message, or returns
// the sender and raw remainder when the remainder is not a single message.
export const parse = (received) => {
  const at = received.indexOf('\n');
  const from = received.slice(0, at);
  const remainder = received.slice(at + 1);
  try {
    const [requestId, message, body] = JSON.parse(remainder);
    return {from, requestId, message, body, remainder};
  } catch {
    return {from, remainder};
  }
};

export const errorMessages = (errors) =>
  errors.map((error) => error?.message ?? String(error));

// A bare client of the multiplexed protocol ('tinybase' subprotocol): control
// messages go to the server as 'S', channel traffic is wrapped as
// 'M\n<channelId>\n<payload>' both ways. Its client id (the same on every
// channel) is learnt on the first subscription.
export const openRawMultiplex = async (
  t,
  server,
  basePath = '',
  {options} = {},
) => {
  const raw = await openRaw(t, server, basePath, {
    protocols: ['tinybase'],
    expectJoin: false,
    options,
  });
  let nextRequest = 0;
  let id;
  const control = async (control, body) => {
    const requestId = `control${nextRequest++}`;
    raw.send(`S\n${JSON.stringify([requestId, -1, [control, body]])}`);
    return raw.receive(
      (message) => message.from === 'S' && message.requestId === requestId,
      `a reply to control ${control}`,
    );
  };
  const onChannel = (channelId) =>
    raw.messages
      .filter((message) => message.startsWith(`M\n${channelId}\n`))
      .map((message) => parse(message.slice(channelId.length + 3)));
  const pathOf = (channelId) =>
    basePath ? `${basePath}/${channelId}` : channelId;
  return {
    ...raw,
    get id() {
      return id;
    },
    hello: (version = 1) => control(0, version),
    subscribe: async (channelId) => {
      const before = new Set(server.wsServer.getClientIds(pathOf(channelId)));
      const reply = await control(1, channelId);
      id ??= await waitFor(
        () =>
          server.wsServer
            .getClientIds(pathOf(channelId))
            .find((clientId) => !before.has(clientId)),
        `multiplexed client to join '${channelId}'`,
      );
      return reply;
    },
    unsubscribe: (channelId) =>
      raw.send(`S\n${JSON.stringify([null, -1, [2, channelId]])}`),
    sendOn: (channelId, payload) => raw.send(`M\n${channelId}\n${payload}`),
    onChannel,
    receiveOn: (channelId, match = () => true, what = 'a channel message') =>
      waitFor(() => onChannel(channelId).find(match), what),
  };
};

// A child Node.js process running `args`, its output collected; killed when the test ends.
// `env` adds to this process's environment.
export const spawnNode = (t, args, cwd, env) => {
  const child = spawn(process.execPath, args, {
    cwd,
    env: {...process.env, ...env},
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = {stdout: '', stderr: ''};
  child.stdout
    .setEncoding('utf8')
    .on('data', (data) => (output.stdout += data));
  child.stderr
    .setEncoding('utf8')
    .on('data', (data) => (output.stderr += data));
  const exited = new Promise((resolve) =>
    child.on('close', (code, signal) => resolve({code, signal, ...output})),
  );
  defer(t, async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
    }
    await exited;
  });
  return {child, output, exited};
};
