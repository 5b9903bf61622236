// The soak's load process, driven by run.js over IPC. It keeps, for the whole run:
//
// - TinyBase clients spread over the sync paths, each with one MergeableStore it keeps across
//   reconnections. While a phase runs they write cells at random (also while disconnected, as
//   an offline client would), are dropped abruptly (the TCP socket destroyed, no close frame)
//   and come back after a random pause;
// - raw clients that join a sync path and send a stream of malformed frames, which the server
//   must close with 1007;
// - slow-reader rounds on paths of their own: raw clients that stop reading while a sender
//   floods the path, which the server must close with 1013 once their backlog overflows, while a
//   reader that keeps up gets every message.
//
// Between phases run.js asks it to quiesce (everyone back and connected), to have every client
// announce its content (so all peers pull what they miss), to report every store, and to close
// everything.

import {once} from 'node:events';
import {setTimeout as delay} from 'node:timers/promises';
import {WebSocket} from 'ws';
import {createMergeableStore} from 'tinybase';
import {createWsSynchronizer} from 'tinybase/synchronizers/synchronizer-ws-client';
import {canonical} from './canonical.js';

const config = JSON.parse(process.argv[2]);
const {
  url,
  paths: PATHS,
  clients: CLIENTS,
  writeEveryMs,
  dropEveryMs,
  malformedEveryMs,
  slowReaders: SLOW_READERS,
  floodMessages: FLOOD_MESSAGES,
  floodMessageBytes: FLOOD_MESSAGE_BYTES,
} = config;

const random = (below) => Math.floor(Math.random() * below);
const WAIT_MS = 30_000;
const waitFor = async (condition, ms = WAIT_MS) => {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) {
      return false;
    }
    await delay(10);
  }
  return true;
};
const count = (counts, key) => (counts[key] = (counts[key] ?? 0) + 1);

const stats = {
  connections: 0,
  rawConnections: 0,
  connectFailures: 0,
  drops: 0,
  // Closes the server started on a healthy client, by code: none are expected.
  serverCloses: {},
  writes: 0,
  syncSends: 0,
  syncReceives: 0,
  clientErrors: {},
  malformedClients: 0,
  malformedFrames: 0,
  malformedCloses: {},
  slowRounds: 0,
  slowReaders: 0,
  slowCloses: {},
  fastReaderShortfalls: 0,
  floodBytes: 0,
  floodMessages: 0,
};

// The sync paths: half persisted by the server, half not.
const pathIds = Array.from(
  {length: PATHS},
  (_, index) => `${index % 2 ? 'memory' : 'persisted'}-${index}`,
);

const clients = Array.from({length: CLIENTS}, (_, index) => ({
  index,
  pathId: pathIds[index % PATHS],
  store: createMergeableStore(),
  state: 'down',
  webSocket: undefined,
  synchronizer: undefined,
  reconnect: undefined,
}));

let running = false;
const timers = new Set();

const onClientError = (error) => {
  const message = String(error?.message ?? error);
  count(
    stats.clientErrors,
    message.startsWith('tinybase:')
      ? message.split(':').slice(0, 2).join(':')
      : message,
  );
};

// Adds what a synchronizer counted before it goes.
const retire = (client) => {
  const synchronizer = client.synchronizer;
  client.synchronizer = undefined;
  if (synchronizer !== undefined) {
    const {sends, receives} = synchronizer.getSynchronizerStats();
    stats.syncSends += sends;
    stats.syncReceives += receives;
    synchronizer.destroy().catch(onClientError);
  }
};

const scheduleReconnect = (client) => {
  if (running && client.reconnect === undefined) {
    client.reconnect = setTimeout(
      () => {
        client.reconnect = undefined;
        connect(client);
      },
      100 + random(900),
    );
  }
};

const connect = async (client) => {
  if (client.state != 'down') {
    return;
  }
  client.state = 'connecting';
  const webSocket = new WebSocket(url + client.pathId, {
    perMessageDeflate: false,
  });
  client.webSocket = webSocket;
  webSocket.on('error', () => {});
  webSocket.on('close', (code) => {
    // Only a close of the current connection that this process did not cause.
    if (client.webSocket === webSocket && client.state == 'up') {
      count(stats.serverCloses, code);
      retire(client);
      client.state = 'down';
      scheduleReconnect(client);
    }
  });
  try {
    const synchronizer = await createWsSynchronizer(
      client.store,
      webSocket,
      1,
      undefined,
      undefined,
      onClientError,
    );
    client.synchronizer = synchronizer;
    await synchronizer.startSync();
    if (webSocket.readyState != WebSocket.OPEN) {
      throw new Error('closed while starting');
    }
    client.state = 'up';
    stats.connections++;
  } catch {
    stats.connectFailures++;
    retire(client);
    webSocket.terminate();
    client.state = 'down';
    scheduleReconnect(client);
  }
};

// A network failure as the server sees it: the socket is gone, without a close frame.
const drop = (client) => {
  stats.drops++;
  client.state = 'down';
  client.webSocket._socket?.destroy();
  retire(client);
  scheduleReconnect(client);
};

const write = () => {
  const client = clients[random(CLIENTS)];
  client.store.setCell(
    't',
    `r${random(40)}`,
    `c${random(5)}`,
    `${client.index}:${stats.writes++}`,
  );
};

const dropOne = () => {
  const up = clients.filter((client) => client.state == 'up');
  if (up.length > 0) {
    drop(up[random(up.length)]);
  }
};

// Frames no valid client sends: not JSON, a wrong shape, a bad message type, and a text frame
// that is not UTF-8 at all (a WebSocket protocol error rather than a TinyBase one).
const MALFORMED = [
  'garbage',
  '\n{not json',
  `\n${JSON.stringify(['r', 99, {}])}`,
  `\n${JSON.stringify(['r', 4, 'not a hash tree'])}`,
  Buffer.from([0x0a, 0x5b, 0xff, 0xfe, 0x5d]),
];

const malformedClient = async () => {
  stats.malformedClients++;
  stats.rawConnections++;
  const webSocket = new WebSocket(url + pathIds[random(PATHS)], {
    perMessageDeflate: false,
  });
  webSocket.on('error', () => {});
  const closed = once(webSocket, 'close');
  try {
    await Promise.race([once(webSocket, 'open'), closed]);
    // A stream: a burst (most of it reaching the server after the first frame got the socket
    // closed), then more until this side has seen the close.
    for (let sent = 0; webSocket.readyState == WebSocket.OPEN; sent++) {
      webSocket.send(MALFORMED[random(MALFORMED.length)], {binary: false});
      stats.malformedFrames++;
      if (sent >= 10) {
        await delay(5);
      }
    }
    const [code] = await Promise.race([
      closed,
      delay(WAIT_MS).then(() => ['none']),
    ]);
    count(stats.malformedCloses, code);
  } finally {
    webSocket.terminate();
  }
};

// One valid message of about `FLOOD_MESSAGE_BYTES`: a GetTableDiff with a large table hash map.
const floodBody = (() => {
  const parts = [];
  for (let key = 0, size = 2; size < FLOOD_MESSAGE_BYTES; key++) {
    parts.push(`"t${key}":${key}`);
    size += parts.at(-1).length + 1;
  }
  return `{${parts.join(',')}}`;
})();
const floodMessage = (requestId) => `\n["${requestId}",4,${floodBody}]`;

const openRaw = async (pathId) => {
  stats.rawConnections++;
  const webSocket = new WebSocket(url + pathId, {perMessageDeflate: false});
  webSocket.on('error', () => {});
  await once(webSocket, 'open');
  return webSocket;
};

// A round on a path of its own: a fast reader and some slow readers join, the slow ones stop
// reading, and a sender floods the path, paced by the fast reader. Once the flood is over the
// slow readers read again, and must find the server closed them with 1013.
const slowRound = async (round) => {
  stats.slowRounds++;
  const pathId = `flood-${round % 2}`;
  const sockets = [];
  try {
    const fast = await openRaw(pathId);
    sockets.push(fast);
    let fastReceived = 0;
    // Probes may still be arriving once the flood starts: only flood messages count.
    fast.on('message', (data) => {
      if (data.length > FLOOD_MESSAGE_BYTES / 2) {
        fastReceived++;
      }
    });
    let probed = false;
    fast.once('message', () => (probed = true));
    const slow = [];
    for (let reader = 0; reader < SLOW_READERS; reader++) {
      const webSocket = await openRaw(pathId);
      sockets.push(webSocket);
      webSocket._socket.pause();
      slow.push({webSocket, closed: once(webSocket, 'close')});
      stats.slowReaders++;
    }
    const sender = await openRaw(pathId);
    sockets.push(sender);
    let sent = 0;
    // Probes until the fast reader hears one: then every reader is on the path.
    for (let probe = 0; !probed && probe < 100; probe++) {
      sender.send(`\n${JSON.stringify([`probe${probe}`, 1, ''])}`);
      await waitFor(() => probed, 200);
    }
    const base = fastReceived;
    while (sent < FLOOD_MESSAGES) {
      for (let batch = 0; batch < 8 && sent < FLOOD_MESSAGES; batch++, sent++) {
        sender.send(floodMessage(`flood${round}.${sent}`));
        stats.floodBytes += floodBody.length;
        stats.floodMessages++;
      }
      if (!(await waitFor(() => fastReceived >= base + sent))) {
        break;
      }
    }
    if (fastReceived < base + FLOOD_MESSAGES) {
      stats.fastReaderShortfalls++;
    }
    for (const {webSocket} of slow) {
      webSocket._socket.resume();
    }
    // The server waits for the close handshake this long at most, so this is ample.
    for (const {closed} of slow) {
      const [code] = await Promise.race([
        closed,
        delay(45_000).then(() => ['none']),
      ]);
      count(stats.slowCloses, code);
    }
  } finally {
    for (const webSocket of sockets) {
      webSocket.close();
    }
    await waitFor(
      () =>
        sockets.every((webSocket) => webSocket.readyState == WebSocket.CLOSED),
      10_000,
    );
    for (const webSocket of sockets) {
      webSocket.terminate();
    }
  }
};

// Background activities that loop while `running`; their promises settle once they stop.
let background = [];
const loop = async (activity, pauseMs) => {
  for (let round = 0; running; round++) {
    await activity(round);
    await delay(pauseMs);
  }
};

const every = (action, ms) => {
  const timer = setInterval(action, ms);
  timers.add(timer);
};

const handlers = {
  start: () => {
    running = true;
    for (const client of clients) {
      connect(client);
    }
    every(write, writeEveryMs);
    every(dropOne, dropEveryMs);
    background = [
      loop(malformedClient, malformedEveryMs),
      loop(slowRound, 1_000),
    ];
    return true;
  },
  quiesce: async () => {
    running = false;
    for (const timer of timers) {
      clearInterval(timer);
    }
    timers.clear();
    await Promise.allSettled(background);
    for (const client of clients) {
      clearTimeout(client.reconnect);
      client.reconnect = undefined;
    }
    await waitFor(() =>
      clients.every((client) => client.state != 'connecting'),
    );
    // Failed attempts are retried here (no phase is running, so nothing schedules them).
    for (let attempt = 0; attempt < 5; attempt++) {
      await Promise.all(
        clients.filter((client) => client.state == 'down').map(connect),
      );
      await waitFor(() =>
        clients.every((client) => client.state != 'connecting'),
      );
    }
    return clients.filter((client) => client.state == 'up').length;
  },
  // Every client sends its content hashes to every peer; each peer then pulls what it lacks.
  announce: async () => {
    await Promise.allSettled(
      clients
        .filter((client) => client.state == 'up')
        .map((client) => client.synchronizer.save()),
    );
    return true;
  },
  report: () => {
    const byPath = {};
    for (const client of clients) {
      (byPath[client.pathId] ??= []).push(
        client.state == 'up'
          ? JSON.stringify(canonical(client.store.getTables()))
          : null,
      );
    }
    return byPath;
  },
  closeAll: async () => {
    for (const client of clients) {
      if (client.state == 'up') {
        const webSocket = client.webSocket;
        client.state = 'down';
        retire(client);
        webSocket.close();
      }
    }
    return waitFor(() =>
      clients.every(
        (client) =>
          client.webSocket === undefined ||
          client.webSocket.readyState == WebSocket.CLOSED,
      ),
    );
  },
  stats: () => {
    let {syncSends, syncReceives} = stats;
    for (const {synchronizer} of clients) {
      if (synchronizer !== undefined) {
        const live = synchronizer.getSynchronizerStats();
        syncSends += live.sends;
        syncReceives += live.receives;
      }
    }
    return {...stats, syncSends, syncReceives};
  },
};

process.on('message', async ({id, type}) => {
  try {
    process.send({id, result: await handlers[type]()});
  } catch (error) {
    process.send({id, error: String(error?.stack ?? error)});
  }
});
process.on('disconnect', () => process.exit(0));
process.send({id: 'ready', result: true});
