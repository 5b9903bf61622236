// Helpers for the native-plane tests. Unlike the conformance harness these always run the native
// server (they test how it works, not what TinyBase sees) and they keep Node's own view of every
// server-side socket in sight: which sockets were taken over, and how many 'data' events and
// 'message' events reached JavaScript for each.

import {spawn, execFileSync} from 'node:child_process';
import {createHash, randomBytes} from 'node:crypto';
import {once} from 'node:events';
import {mkdtempSync, readFileSync, readdirSync, rmSync} from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {WebSocket, WebSocketServer} from 'ws';
import {createWsServer, getListenAddress} from '../../../index.js';
import {
  WAIT_MS,
  defer,
  openClient,
  waitFor,
  withTimeout,
} from '../../support/harness.js';

export {createWsServer};

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export const acceptKey = (key) =>
  createHash('sha1')
    .update(key + WS_GUID)
    .digest('base64');

// The count of this process's open file descriptors (Linux).
export const openFds = () => readdirSync('/proc/self/fd').length;

const listen = async (server) => {
  server.listen(0, '127.0.0.1');
  await withTimeout(once(server, 'listening'), 'an http server to listen');
  return server.address().port;
};

const closeHttpServer = (server) =>
  withTimeout(
    new Promise((resolve) => {
      server.closeAllConnections?.();
      server.close(() => resolve());
    }),
    'an http server to close',
  );

// Counts the 'data' events a server-side socket emits, without adding a listener: a listener
// would switch the socket to flowing mode, and a flowing socket is one the server must leave in JS.
const countData = (socket) => {
  const record = {socket, data: 0};
  const emit = socket.emit;
  socket.emit = function (event, ...args) {
    if (event === 'data') {
      record.data++;
    }
    return emit.call(this, event, ...args);
  };
  return record;
};

// Counts the 'message' events the server-side WebSocket emits, also without adding a listener (a
// 'message' listener on a taken-over socket turns mirroring on).
const countMessages = (webSocket) => {
  const counter = {messages: 0};
  const emit = webSocket.emit;
  webSocket.emit = function (event, ...args) {
    if (event === 'message') {
      counter.messages++;
    }
    return emit.call(this, event, ...args);
  };
  return counter;
};

/**
 * A self-signed certificate for 127.0.0.1, made with openssl at test time; undefined when there is
 * no openssl to make one.
 */
export const selfSignedCertificate = () => {
  const dir = mkdtempSync(join(tmpdir(), 'tb-ws-native-tls-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
        '-days',
        '2',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      {stdio: 'ignore', timeout: WAIT_MS},
    );
    return {
      key: readFileSync(join(dir, 'key.pem')),
      cert: readFileSync(join(dir, 'cert.pem')),
    };
  } catch {
    return undefined;
  } finally {
    rmSync(dir, {recursive: true, force: true});
  }
};

/**
 * A native createWsServer on a noServer WebSocketServer fed by an http server (and an https one
 * when `tls` is given), so that one WebSocketServer accepts both plain and TLS connections.
 * `WebSocketServerClass` and `serverOptions` choose the WebSocketServer (by default this package's
 * ws, without permessage-deflate unless `perMessageDeflate` is set).
 * `connections` lists, for every connection the WebSocketServer accepted, the server-side
 * WebSocket, its request, and counts of the 'data' events of its socket and of the 'message'
 * events of its WebSocket; the listener that records them is added after createWsServer, as a
 * user's would be.
 */
export const startNative = async (
  t,
  {
    perMessageDeflate = false,
    tls,
    createPersisterForPath,
    onIgnoredError,
    nativeOptions,
    requestTimeoutSeconds,
    // Another copy's class, to serve from a WebSocketServer that is not this package's ws.
    WebSocketServerClass = WebSocketServer,
    serverOptions,
  } = {},
) => {
  const webSocketServer = new WebSocketServerClass({
    noServer: true,
    perMessageDeflate,
    ...serverOptions,
  });
  const sockets = new Map();
  const upgrade = (request, socket, head) =>
    webSocketServer.handleUpgrade(request, socket, head, (webSocket) =>
      webSocketServer.emit('connection', webSocket, request),
    );
  const httpServer = http.createServer();
  httpServer.on('connection', (socket) =>
    sockets.set(socket, countData(socket)),
  );
  httpServer.on('upgrade', upgrade);
  defer(t, () => closeHttpServer(httpServer));
  const port = await listen(httpServer);
  let tlsPort;
  if (tls !== undefined) {
    const httpsServer = https.createServer(tls);
    httpsServer.on('secureConnection', (socket) =>
      sockets.set(socket, countData(socket)),
    );
    httpsServer.on('upgrade', upgrade);
    defer(t, () => closeHttpServer(httpsServer));
    tlsPort = await listen(httpsServer);
  }
  defer(t, () =>
    withTimeout(
      new Promise((resolve) => webSocketServer.close(() => resolve())),
      'the WebSocketServer to close',
    ),
  );

  const errors = [];
  const wsServer = createWsServer(
    webSocketServer,
    createPersisterForPath,
    (error) => {
      errors.push(error);
      onIgnoredError?.(error);
    },
    requestTimeoutSeconds,
    undefined,
    nativeOptions,
  );
  defer(t, () =>
    withTimeout(
      wsServer.destroy().catch(() => {}),
      'wsServer.destroy()',
    ),
  );

  const connections = [];
  webSocketServer.on('connection', (webSocket, request) => {
    const socketRecord = sockets.get(request.socket);
    const messageRecord = countMessages(webSocket);
    connections.push({
      webSocket,
      request,
      key: request.headers['sec-websocket-key'],
      get data() {
        return socketRecord?.data;
      },
      get messages() {
        return messageRecord.messages;
      },
    });
  });

  return {
    webSocketServer,
    wsServer,
    errors,
    port,
    tlsPort,
    connections,
    url: (path = '') => `ws://127.0.0.1:${port}/${path}`,
    tlsUrl: (path = '') => `wss://127.0.0.1:${tlsPort}/${path}`,
    // The server's record of the connection whose Sec-WebSocket-Key (client id) is `key`.
    connection: (key, what = `the server side of connection ${key}`) =>
      waitFor(
        () => connections.find((connection) => connection.key === key),
        what,
      ),
  };
};

// The client id of a ws client: the server names clients by their Sec-WebSocket-Key.
export const keyOf = (webSocket) =>
  webSocket._req?.getHeader('sec-websocket-key') ?? webSocket.clientKey;

/**
 * A ws client that records what it receives. Its Sec-WebSocket-Key is read from its upgrade
 * request, so it needs no help from the server to know its own client id.
 */
export const openWs = async (t, url, {options = {}, protocols = []} = {}) => {
  const webSocket = new WebSocket(url, protocols, {
    perMessageDeflate: false,
    ...options,
  });
  const key = webSocket._req.getHeader('sec-websocket-key');
  webSocket.on('error', () => {});
  const messages = [];
  webSocket.on('message', (data) => messages.push(data.toString()));
  const closed = new Promise((resolve) =>
    webSocket.once('close', (code, reason) =>
      resolve({code, reason: reason.toString()}),
    ),
  );
  defer(t, async () => {
    if (webSocket.readyState !== WebSocket.CLOSED) {
      webSocket.close();
      try {
        await withTimeout(closed, 'a ws client to close', 5_000);
      } catch {
        webSocket.terminate();
      }
    }
  });
  await withTimeout(once(webSocket, 'open'), `${url} to open`);
  return {
    webSocket,
    key,
    messages,
    closed,
    send: (data) => webSocket.send(data),
  };
};

/** A real TinyBase client over a ws WebSocket that does not offer permessage-deflate. */
export const openTinyBase = (t, url, {options = {}, ...rest} = {}) => {
  const webSocket = new WebSocket(url, [], {
    perMessageDeflate: false,
    ...options,
  });
  const key = webSocket._req.getHeader('sec-websocket-key');
  return openClient(t, url, {webSocket, ...rest}).then((client) => ({
    ...client,
    key,
  }));
};

// A TinyBase request for content hashes, broadcast (empty target) or to one client: the shortest
// message the server validates and relays.
export const hashesRequest = (requestId, to = '') =>
  `${to}\n${JSON.stringify([requestId, 1, ''])}`;

// The request id of a relayed payload ('<from>\n[requestId, type, body]').
export const requestIdOf = (received) =>
  JSON.parse(received.slice(received.indexOf('\n') + 1))[0];
export const senderOf = (received) => received.slice(0, received.indexOf('\n'));

// --- WebSocket over a bare TCP socket: nothing answers pings unless the test does ---

export const OPCODES = {text: 1, binary: 2, close: 8, ping: 9, pong: 10};

/** A client frame (masked, as RFC 6455 requires of clients). */
export const clientFrame = (opcode, payload = Buffer.alloc(0)) => {
  const data = Buffer.from(payload);
  const length = data.length;
  const header =
    length < 126
      ? Buffer.from([0x80 | opcode, 0x80 | length])
      : length < 65536
        ? Buffer.from([0x80 | opcode, 0x80 | 126, length >> 8, length & 255])
        : Buffer.concat([
            Buffer.from([0x80 | opcode, 0x80 | 127]),
            (() => {
              const size = Buffer.alloc(8);
              size.writeBigUInt64BE(BigInt(length));
              return size;
            })(),
          ]);
  const mask = randomBytes(4);
  const masked = Buffer.alloc(length);
  for (let index = 0; index < length; index++) {
    masked[index] = data[index] ^ mask[index & 3];
  }
  return Buffer.concat([header, mask, masked]);
};

export const closePayload = (code, reason = '') => {
  const payload = Buffer.alloc(2 + Buffer.byteLength(reason));
  payload.writeUInt16BE(code);
  payload.write(reason, 2);
  return payload;
};

// Splits the server's bytes into frames (server frames are never masked); returns the frames and
// whatever incomplete frame is left over.
const parseFrames = (buffer) => {
  const frames = [];
  let at = 0;
  for (;;) {
    if (buffer.length - at < 2) {
      break;
    }
    const opcode = buffer[at] & 0x0f;
    const fin = (buffer[at] & 0x80) !== 0;
    let length = buffer[at + 1] & 0x7f;
    let start = at + 2;
    if (length === 126) {
      if (buffer.length - at < 4) {
        break;
      }
      length = buffer.readUInt16BE(at + 2);
      start = at + 4;
    } else if (length === 127) {
      if (buffer.length - at < 10) {
        break;
      }
      length = Number(buffer.readBigUInt64BE(at + 2));
      start = at + 10;
    }
    if (buffer.length < start + length) {
      break;
    }
    frames.push({fin, opcode, payload: buffer.subarray(start, start + length)});
    at = start + length;
  }
  return {frames, rest: buffer.subarray(at)};
};

/**
 * Upgrades a bare TCP connection by hand. `after` is written in the same write as the upgrade
 * request (pipelined: the server reads it before it has even answered); `headers` are added to
 * the request. The returned client
 * records the raw response head and every frame the server sends, answers nothing by itself, and
 * can send any frame.
 */
export const openTcp = async (
  t,
  port,
  path,
  {after = [], key, headers = {}} = {},
) => {
  key ??= randomBytes(16).toString('base64');
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  defer(t, async () => {
    if (!socket.destroyed) {
      const closed = once(socket, 'close');
      socket.destroy();
      await withTimeout(closed, 'a raw TCP client to close');
    }
  });
  const ended = once(socket, 'close');
  await withTimeout(once(socket, 'connect'), 'a raw TCP connect');
  const request =
    `GET /${path} HTTP/1.1\r\n` +
    `Host: 127.0.0.1:${port}\r\n` +
    'Upgrade: websocket\r\n' +
    'Connection: Upgrade\r\n' +
    `Sec-WebSocket-Key: ${key}\r\n` +
    'Sec-WebSocket-Version: 13\r\n' +
    Object.entries(headers)
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join('') +
    '\r\n';
  socket.write(Buffer.concat([Buffer.from(request), ...after]));

  const client = {
    socket,
    key,
    // Everything before the first blank line, as it came off the wire.
    head: undefined,
    frames: [],
    ended,
    texts: () =>
      client.frames
        .filter(({opcode}) => opcode === OPCODES.text)
        .map(({payload}) => payload.toString()),
    send: (opcode, payload) => socket.write(clientFrame(opcode, payload)),
    sendText: (text) => socket.write(clientFrame(OPCODES.text, text)),
  };
  let pending = Buffer.alloc(0);
  socket.on('data', (data) => {
    pending = Buffer.concat([pending, data]);
    if (client.head === undefined) {
      const end = pending.indexOf('\r\n\r\n');
      if (end === -1) {
        return;
      }
      client.head = pending.subarray(0, end).toString('latin1');
      pending = pending.subarray(end + 4);
    }
    const {frames, rest} = parseFrames(pending);
    client.frames.push(...frames);
    pending = rest;
  });
  await waitFor(() => client.head !== undefined, 'the upgrade response');
  return client;
};

// The status line and headers (lower-cased names) of a raw response head.
export const parseHead = (head) => {
  const [status, ...lines] = head.split('\r\n');
  const headers = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line
      .slice(colon + 1)
      .trim();
  }
  return {status, headers};
};

// --- child processes ---

/**
 * Runs a Node script to its end; the bound only turns a hang into a failure (and the child is
 * killed then). Resolves with its exit code, signal and output. `onStdout` sees stdout as it comes.
 */
export const runChild = async (
  script,
  {args = [], ms = 40_000, onStdout, input} = {},
) => {
  const child = spawn(process.execPath, [script, ...args], {
    env: {...process.env, NODE_OPTIONS: ''},
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (data) => {
    stdout += data;
    onStdout?.(stdout, child);
  });
  child.stderr.on('data', (data) => (stderr += data));
  if (input !== undefined) {
    child.stdin.end(input);
  }
  const exited = once(child, 'exit');
  try {
    const [code, signal] = await withTimeout(
      exited,
      `${script} to exit by itself`,
      ms,
    );
    // The pipes can still hold output after 'exit'.
    if (child.stdout.readable) {
      await once(child.stdout, 'close').catch(() => {});
    }
    return {code, signal, stdout, stderr};
  } catch (error) {
    error.message += `; stdout so far: ${JSON.stringify(stdout)}, stderr: ${JSON.stringify(stderr)}`;
    throw error;
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  }
};

// Sends `request` as it is and resolves with everything the server wrote until it closed.
export const exchange = async (t, port, request) => {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  defer(t, () => socket.destroy());
  const chunks = [];
  socket.on('data', (chunk) => chunks.push(chunk));
  await withTimeout(once(socket, 'connect'), 'a raw TCP connect');
  // One byte a character, so a request can carry bytes past ASCII as HTTP allows.
  socket.end(Buffer.from(request, 'latin1'));
  await withTimeout(once(socket, 'close'), 'the server to close');
  return Buffer.concat(chunks).toString();
};

export const upgradeRequest = (path, headers) =>
  `GET /${path} HTTP/1.1\r\nHost: localhost\r\n` +
  Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('') +
  '\r\n';

export const validHeaders = () => ({
  Upgrade: 'websocket',
  Connection: 'Upgrade',
  'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
  'Sec-WebSocket-Version': '13',
});

/**
 * A WebSocketServer served by this package's createWsServer, counting the 'connection' events
 * ws emits: listening on a port of its own (or on `server`), with `nativeUpgrade` unless
 * `upgrade` is false, or, with `listen`, on an HTTP server that does not listen itself and
 * answers plain requests with their URL, the native plane listening for it.
 */
export const startServing = async (
  t,
  {serverOptions, upgrade = true, listen = false, nativeOptions, server} = {},
) => {
  const httpServer = listen
    ? http.createServer((request, response) =>
        response.end(`served ${request.url}`),
      )
    : server;
  const webSocketServer = new WebSocketServer(
    httpServer === undefined
      ? {host: '127.0.0.1', port: 0, perMessageDeflate: false, ...serverOptions}
      : {server: httpServer, perMessageDeflate: false, ...serverOptions},
  );
  defer(t, () =>
    withTimeout(
      new Promise((resolve) => webSocketServer.close(() => resolve())),
      'the WebSocketServer to close',
    ),
  );
  if (httpServer === undefined) {
    await withTimeout(once(webSocketServer, 'listening'), 'listening');
  }
  const errors = [];
  const wsServer = createWsServer(
    webSocketServer,
    undefined,
    (error) => errors.push(error),
    undefined,
    undefined,
    listen
      ? {listen: {port: 0, host: '127.0.0.1'}, ...nativeOptions}
      : {nativeUpgrade: upgrade, ...nativeOptions},
  );
  defer(t, () =>
    withTimeout(
      wsServer.destroy().catch(() => {}),
      'wsServer.destroy()',
    ),
  );
  const seen = {connections: 0};
  webSocketServer.on('connection', () => seen.connections++);
  const {port} = listen
    ? getListenAddress(wsServer)
    : (server ?? webSocketServer).address();
  return {
    httpServer,
    webSocketServer,
    wsServer,
    errors,
    seen,
    port,
    url: (path = '') => `ws://127.0.0.1:${port}/${path}`,
  };
};

// Upgrade requests ws refuses with a 400, by what is wrong with them.
export const refusedUpgrades = () => ({
  'a bad key': upgradeRequest('p', {
    ...validHeaders(),
    'Sec-WebSocket-Key': 'short',
  }),
  'an old version': upgradeRequest('p', {
    ...validHeaders(),
    'Sec-WebSocket-Version': '7',
  }),
  'a repeated subprotocol': upgradeRequest('p', {
    ...validHeaders(),
    'Sec-WebSocket-Protocol': 'a, a',
  }),
  'a subprotocol ending in a no-break space': upgradeRequest('p', {
    ...validHeaders(),
    'Sec-WebSocket-Protocol': 'chat\u00a0',
  }),
  'another path': upgradeRequest('elsewhere', validHeaders()),
});

// What the server on `port` answers each of `requests`, by name.
export const exchangeEach = async (t, port, requests) => {
  const answered = {};
  for (const [what, request] of Object.entries(requests)) {
    answered[what] = await exchange(t, port, request);
  }
  return answered;
};
