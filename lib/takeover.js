// The JS half of handing a `ws` connection to the native plane: deciding whether it can be taken
// over, detaching ws from the socket, and collecting what Node already read, all in the tick of the
// 'connection' event (see the connection-takeover design notes for each trap guarded here).
//
// A WebSocket is recognised by its structure, not by being an instance of this package's copy of
// ws: an app's WebSocketServer often comes from another copy (a monorepo, `npm link`, a framework
// that bundles ws), and every copy of ws 8 builds its sockets the same way.

import {Socket} from 'node:net';
import {TLSSocket} from 'node:tls';

// The socket listeners ws 8 adds in `setSocket`; they must go so ws no longer reads or reacts.
const WS_SOCKET_LISTENERS = [
  ['close', 'socketOnClose'],
  ['data', 'socketOnData'],
  ['end', 'socketOnEnd'],
  ['error', 'socketOnError'],
];

// What the facade replaces: user code that replaced any of them first is relying on its own.
const FACADE_MEMBERS = [
  'send',
  'close',
  'terminate',
  'ping',
  'pong',
  'pause',
  'resume',
  'bufferedAmount',
];

// Accessors every ws 8 WebSocket class defines on its prototype.
const WS_ACCESSORS = ['readyState', 'bufferedAmount', 'extensions', 'isPaused'];

const noop = () => {};

const hasAccessor = (prototype, name) =>
  typeof Object.getOwnPropertyDescriptor(prototype, name)?.get == 'function';

/**
 * The prototype of ws 8's own WebSocket class in `webSocket`'s chain (below any user subclass),
 * or undefined if `webSocket` is not built the way ws 8 builds it.
 */
export const wsPrototypeOf = (webSocket) => {
  if (webSocket === null || typeof webSocket != 'object') {
    return undefined;
  }
  for (
    let prototype = Object.getPrototypeOf(webSocket);
    prototype !== null && prototype !== Object.prototype;
    prototype = Object.getPrototypeOf(prototype)
  ) {
    if (Object.hasOwn(prototype, 'setSocket')) {
      return typeof prototype.setSocket == 'function' &&
        WS_ACCESSORS.every((name) => hasAccessor(prototype, name))
        ? prototype
        : undefined;
    }
  }
  return undefined;
};

// ws 8's WebSocket state once `setSocket` has run, and its four listeners on the socket.
const hasWsShape = (webSocket, socket) =>
  wsPrototypeOf(webSocket) !== undefined &&
  typeof webSocket._readyState == 'number' &&
  webSocket._receiver != null &&
  webSocket._sender != null &&
  typeof webSocket.listenerCount == 'function' &&
  typeof socket?.listeners == 'function' &&
  WS_SOCKET_LISTENERS.every(([event, name]) =>
    socket.listeners(event).some((listener) => listener.name == name),
  );

const hasNegotiatedExtension = (webSocket) =>
  Object.keys(webSocket._extensions ?? {}).length > 0 ||
  (webSocket.extensions ?? '') !== '';

// Whether user code hooked into this WebSocket before us (a 'message' listener, or one of the
// members the facade replaces, patched on the socket or overridden by a subclass), in which case it
// keeps working exactly as ws runs it. Judged against the socket's own copy of ws.
const isInstrumented = (webSocket) => {
  if (webSocket.listenerCount('message') > 0) {
    return true;
  }
  const wsPrototype = wsPrototypeOf(webSocket);
  for (
    let object = webSocket;
    object !== wsPrototype;
    object = Object.getPrototypeOf(object)
  ) {
    if (FACADE_MEMBERS.some((name) => Object.hasOwn(object, name))) {
      return true;
    }
  }
  return false;
};

// Each check names why a connection stays in JS; the first that applies is its reason.
const KEEP_IN_JS = [
  ['platform', () => process.platform == 'win32'],
  ['unknown-ws-shape', (webSocket, socket) => !hasWsShape(webSocket, socket)],
  ['tls', (_, socket) => socket instanceof TLSSocket || socket.encrypted],
  ['no-fd', (_, socket) => !(socket instanceof Socket)],
  ['foreign-socket', (_, socket, request) => request?.socket !== socket],
  ['deflate', (webSocket) => hasNegotiatedExtension(webSocket)],
  ['instrumented', (webSocket) => isInstrumented(webSocket)],
  // Already flowing means ws may have consumed frames: they are in its receiver, not ours.
  [
    'already-reading',
    (_, socket) =>
      socket.readableFlowing && !socket._readableState?.resumeScheduled,
  ],
  // The 101 response must be on the wire before another writer touches the fd.
  ['unflushed-upgrade', (_, socket) => socket.writableLength > 0],
  ['closed', (_, socket) => socket.destroyed],
  [
    'no-fd',
    (_, socket) => {
      const fd = socket._handle?.fd;
      return !Number.isInteger(fd) || fd < 0;
    },
  ],
];

// The checks that look at the socket alone, not at a WebSocket ws made for it.
const SOCKET_REASONS = new Set([
  'platform',
  'tls',
  'no-fd',
  'foreign-socket',
  'closed',
]);

/**
 * The fd of a plain TCP socket the native plane can take over before ws has made a WebSocket for
 * it, or undefined: the checks of `planeOf` that need only the socket and its request.
 */
export const plainFdOf = (socket, request) =>
  KEEP_IN_JS.some(
    ([reason, applies]) =>
      SOCKET_REASONS.has(reason) && applies(undefined, socket, request),
  )
    ? undefined
    : socket._handle.fd;

/**
 * Where a connection ws has just upgraded goes: `{fd}` of a plain, quiet TCP socket the native
 * plane can take over, or `{reason}` it has to stay in JS.
 */
export const planeOf = (webSocket, request) => {
  const socket = webSocket?._socket;
  for (const [reason, applies] of KEEP_IN_JS) {
    if (applies(webSocket, socket, request)) {
      return {reason};
    }
  }
  return {fd: socket._handle.fd};
};

/**
 * Detaches ws from the socket and stops Node reading it; returns every byte Node had read but not
 * yet delivered (the upgrade head ws unshifted, and anything since).
 */
export const detach = (webSocket) => {
  const socket = webSocket._socket;
  for (const [event, name] of WS_SOCKET_LISTENERS) {
    for (const listener of socket.listeners(event)) {
      if (listener.name == name) {
        socket.removeListener(event, listener);
      }
    }
  }
  return stopReading(socket);
};

/**
 * Stops Node reading a socket for good; returns every byte it had read but not yet delivered.
 */
export const stopReading = (socket) => {
  // An error on the orphaned socket before it is destroyed must not become an uncaught exception.
  socket.on('error', noop);
  socket.pause();
  const chunks = [];
  for (let chunk; (chunk = socket.read()) !== null;) {
    chunks.push(chunk);
  }
  const handle = socket._handle;
  handle.readStop();
  // Node restarts reading by itself (a scheduled resume, or read() calling _read); keep it stopped
  // until the socket is destroyed, or it would steal bytes from the native plane.
  handle.readStart = () => 0;
  // Cached now, so user code can still read them once the socket is released.
  void socket.remoteAddress;
  void socket.remotePort;
  void socket.remoteFamily;
  return Buffer.concat(chunks);
};

/**
 * Lets go of Node's copy of the socket without touching the connection: destroy() only closes
 * Node's fd (the native plane works on a duplicate). Done from setImmediate: destroying inside the
 * I/O phase left a stale epoll registration with io_uring.
 */
export const release = (socket) => {
  setImmediate(() => socket.destroy());
};
