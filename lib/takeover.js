// The JS half of handing a `ws` connection to the native plane: deciding whether it can be taken
// over, detaching ws from the socket, and collecting what Node already read, all in the tick of the
// 'connection' event (see the connection-takeover design notes for each trap guarded here).

import {Socket} from 'node:net';
import {TLSSocket} from 'node:tls';
import {WebSocket} from 'ws';

// The socket listeners ws 8 adds in `setSocket`; they must go so ws no longer reads or reacts.
const WS_SOCKET_LISTENERS = [
  ['close', 'socketOnClose'],
  ['data', 'socketOnData'],
  ['end', 'socketOnEnd'],
  ['error', 'socketOnError'],
];

const noop = () => {};

const hasNegotiatedExtension = (webSocket) =>
  Object.keys(webSocket._extensions ?? {}).length > 0 ||
  (webSocket.extensions ?? '') !== '';

// Whether user code had already hooked into this WebSocket before us, in which case it keeps
// working exactly as ws would run it.
const isInstrumented = (webSocket) =>
  webSocket.listenerCount('message') > 0 ||
  webSocket.send !== WebSocket.prototype.send;

/**
 * The fd of a plain, quiet TCP socket that ws has just upgraded, or undefined if this connection
 * has to stay in JS.
 */
export const takeoverFd = (webSocket, request) => {
  const socket = webSocket?._socket;
  if (
    process.platform == 'win32' ||
    !(webSocket instanceof WebSocket) ||
    !(socket instanceof Socket) ||
    socket instanceof TLSSocket ||
    socket.encrypted ||
    request?.socket !== socket ||
    hasNegotiatedExtension(webSocket) ||
    isInstrumented(webSocket) ||
    // Already flowing means ws may have consumed frames: they are in its receiver, not ours.
    (socket.readableFlowing && !socket._readableState?.resumeScheduled) ||
    // The 101 response must be on the wire before another writer touches the fd.
    socket.writableLength > 0 ||
    socket.destroyed
  ) {
    return undefined;
  }
  const fd = socket._handle?.fd;
  return Number.isInteger(fd) && fd >= 0 ? fd : undefined;
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
export const release = (webSocket) => {
  const socket = webSocket._socket;
  setImmediate(() => socket.destroy());
};
