// Keeps the `ws` WebSocket object that user code holds faithful to a connection the native plane
// has taken over: its state, its events and its methods all act on the native connection.

const CLOSING = 2;
const CLOSED = 3;
// The most a Close frame's reason may take, in bytes.
const MAX_CLOSE_REASON_BYTES = 123;

// ws's send(), ping() and pong() take their callback last, after optional arguments.
const callbackOf = (...args) => args.find((arg) => typeof arg == 'function');

/**
 * Turns `webSocket` into a facade of native connection `conn`. Returns what the server calls as
 * the native side reports: `closed(code, reason)`, `message(data)` and
 * `error(message, code, rangeError)`.
 */
export const becomeFacade = (webSocket, conn, native) => {
  // ws's own reader and writer for this socket will never run again; let them go.
  webSocket._receiver = null;
  webSocket._sender = null;

  Object.defineProperty(webSocket, 'bufferedAmount', {
    configurable: true,
    get: () => native.bufferedAmount(conn),
  });

  webSocket.send = (data, options, callback) => {
    const done = callbackOf(options, callback);
    if (webSocket.readyState != webSocket.OPEN) {
      done?.(
        new Error('WebSocket is not open: readyState ' + webSocket.readyState),
      );
      return;
    }
    // As ws: numbers go as text, other data as binary unless `binary` says otherwise.
    const text = typeof data == 'number' ? String(data) : data;
    if (options?.binary ?? typeof text != 'string') {
      native.sendNativeBinary(conn, Buffer.from(text));
    } else {
      native.sendNative(conn, Buffer.from(text).toString('utf8'));
    }
    if (done) {
      process.nextTick(done);
    }
  };

  // As ws's close(): no code sends a Close without a status, and a code that may not be sent
  // throws before anything changes.
  webSocket.close = (code, reason) => {
    if (webSocket.readyState >= CLOSING) {
      return;
    }
    if (Buffer.byteLength(String(reason ?? '')) > MAX_CLOSE_REASON_BYTES) {
      throw new RangeError('The message must not be greater than 123 bytes');
    }
    if (
      (code !== undefined && typeof code != 'number') ||
      !native.closeNative(conn, code, String(reason ?? ''))
    ) {
      throw new TypeError('First argument must be a valid error code number');
    }
    webSocket._readyState = CLOSING;
  };

  webSocket.terminate = () => {
    if (webSocket.readyState != CLOSED) {
      webSocket._readyState = CLOSING;
      native.terminateNative(conn);
    }
  };

  // A ping goes out natively and its pong comes back as ws's 'pong' event, so ws's own
  // heartbeat pattern keeps working. The plane answers the peer's pings itself.
  webSocket.ping = (data, mask, callback) => {
    const done = callbackOf(data, mask, callback);
    if (webSocket.readyState == webSocket.OPEN) {
      native.pingNative(
        conn,
        typeof data == 'function' || data === undefined
          ? Buffer.alloc(0)
          : Buffer.from(String(data)),
      );
    }
    if (done) {
      process.nextTick(done);
    }
  };
  webSocket.pong = (data, mask, callback) => {
    const done = callbackOf(data, mask, callback);
    if (done) {
      process.nextTick(done);
    }
  };

  // ws's pause() and resume() stop and restart reading the socket.
  webSocket.pause = () => {
    if (webSocket.readyState < CLOSING) {
      webSocket._paused = true;
      native.setPaused(conn, true);
    }
  };
  webSocket.resume = () => {
    if (webSocket.readyState < CLOSING) {
      webSocket._paused = false;
      native.setPaused(conn, false);
    }
  };

  // A 'message' listener added after the takeover still sees every message from then on.
  webSocket.on('newListener', (event) => {
    if (event == 'message') {
      native.setMirrored(conn, true);
    }
  });
  webSocket.on('removeListener', (event) => {
    if (event == 'message' && webSocket.listenerCount('message') == 0) {
      native.setMirrored(conn, false);
    }
  });

  return {
    closed: (code, reason) => {
      webSocket._readyState = CLOSED;
      webSocket.emit('close', code, Buffer.from(reason));
    },
    message: (data) => webSocket.emit('message', Buffer.from(data), false),
    pong: (data) => webSocket.emit('pong', Buffer.from(data)),
    // A frame ws would reject: as after ws's receiver error, the socket is closing (the plane
    // sent the status) and the error is emitted on the WebSocket, reaching its 'error' listeners.
    error: (message, code, rangeError) => {
      const error = new (rangeError ? RangeError : Error)(message);
      error.code = code;
      if (webSocket.readyState < CLOSING) {
        webSocket._readyState = CLOSING;
      }
      webSocket.emit('error', error);
    },
  };
};
