// Cluster test support: a private redis-server per test, server processes started with the
// command line, and bare clients that learn each other's ids from what they broadcast.

import {spawn} from 'node:child_process';
import {once} from 'node:events';
import {fileURLToPath} from 'node:url';
import {WebSocket} from 'ws';
import {freePort, spawnRedisServer} from '../../scripts/redis-server.js';
import {
  defer,
  openClient,
  parse,
  spawnNode,
  waitFor,
  withTimeout,
} from '../support/harness.js';

const BIN = fileURLToPath(
  new URL('../../bin/tinybase-ws-server.js', import.meta.url),
);
const READY = /^tinybase-ws-server listening on (ws:\/\/127\.0\.0\.1:\d+)$/m;

/**
 * A redis-server of this test's own on a free port, keeping nothing on disk, so the test can
 * stop and restart it. Killed when the test ends.
 */
export const startRedis = async (t, options) => {
  const port = await freePort();
  let child;
  const start = async () => {
    child = await spawnRedisServer(port, options);
  };
  const stop = () => child.stop();
  await start();
  defer(t, stop);
  return {url: `redis://127.0.0.1:${port}`, port, start, stop};
};

/** A server process of the cluster at `redis`, serving from memory. */
export const startNode = async (t, redis, {prefix, env} = {}) => {
  const {child, output} = spawnNode(
    t,
    [
      BIN,
      '--port',
      '0',
      '--memory',
      '--quiet',
      '--redis',
      redis.url,
      ...(prefix === undefined ? [] : ['--cluster-prefix', prefix]),
    ],
    undefined,
    env,
  );
  const url = await waitFor(
    () => output.stdout.match(READY)?.[1] ?? child.exitCode !== null,
    'a node to listen',
  );
  if (url === true) {
    throw new Error(`the node exited: ${output.stderr}`);
  }
  return {child, output, url: (path) => `${url}/${path}`};
};

const PERSISTED_NODE = fileURLToPath(
  new URL('fixtures/persisted-node.js', import.meta.url),
);

/**
 * A server process of the cluster at `redis` persisting each path into a file in `dir`;
 * `stats()` answers how often its factory was called and how many saves its persisters made.
 */
export const startPersistedNode = async (t, redis, dir) => {
  const child = spawn(process.execPath, [PERSISTED_NODE, redis.url, dir], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = once(child, 'exit');
  defer(t, async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  const [{port}] = await withTimeout(
    once(child, 'message'),
    'a node to listen',
  );
  const stats = async () => {
    const answer = once(child, 'message');
    child.send('stats');
    return (await withTimeout(answer, 'node stats'))[0];
  };
  const kill = async () => {
    child.kill('SIGKILL');
    await exited;
  };
  return {child, stats, kill, url: (path) => `ws://127.0.0.1:${port}/${path}`};
};

/** `perNode` TinyBase clients of `path` on each node, in node order. */
export const openClients = async (t, nodes, path, perNode = 2) => {
  const clients = [];
  for (const node of nodes) {
    for (let index = 0; index < perNode; index++) {
      clients.push(await openClient(t, node.url(path)));
    }
  }
  return clients;
};

/**
 * A bare client that records what it receives (parsed). Others learn its id from what it
 * broadcasts: see `meet`. Its hellos have bodies `[n, 0]`; tests send other bodies.
 */
export const openRaw = async (t, url, name) => {
  const webSocket = new WebSocket(url);
  webSocket.on('error', () => {});
  const messages = [];
  webSocket.on('message', (data) => messages.push(parse(data.toString())));
  const closed = new Promise((resolve) =>
    webSocket.once('close', (code) => resolve(code)),
  );
  defer(t, async () => {
    if (webSocket.readyState !== WebSocket.CLOSED) {
      webSocket.terminate();
      await closed;
    }
  });
  await withTimeout(once(webSocket, 'open'), 'raw client open');
  const raw = {
    name,
    webSocket,
    closed,
    // Everything received, parsed.
    messages,
    // Other clients' ids by name, once met.
    ids: new Map(),
    send: (to, body) =>
      webSocket.send(`${to}\n${JSON.stringify([null, 2, body])}`),
    // What was received apart from hellos, as [from, body].
    received: () =>
      messages
        .filter(({body}) => body?.[1] !== 0)
        .map(({from, body}) => [from, body]),
    heard: (n) => messages.find(({body}) => body?.[0] === n && body?.[1] === 0),
  };
  return raw;
};

// Hellos are repeated until heard: a node starts listening to a path as its first client
// joins, and what is published before that is not for it.
const HELLO_INTERVAL_MS = 100;

/** Every raw client broadcasts hellos until each has heard every other and knows its id. */
export const meet = async (raws) => {
  const everyoneHeard = (raw) =>
    raws.every((other, index) => other === raw || raw.heard(index + 1));
  const saying = setInterval(
    () => raws.forEach((raw, index) => raw.send('', [index + 1, 0])),
    HELLO_INTERVAL_MS,
  );
  try {
    for (const raw of raws) {
      await waitFor(
        () => everyoneHeard(raw),
        `${raw.name} to hear every other client`,
      );
    }
  } finally {
    clearInterval(saying);
  }
  for (const raw of raws) {
    raws.forEach((other, index) => {
      if (other !== raw) {
        raw.ids.set(other.name, raw.heard(index + 1).from);
      }
    });
  }
};
