// Keeps the `ws` WebSocket object that user code holds faithful to a connection the native plane
// has taken over: its state, its events and its methods all act on the native connection.

const CLOSING = 2;
const CLOSED = 3;

/**
 * Turns `webSocket` into a facade of native connection `conn`. Returns what the server calls as
 * the native side reports: `closed(code, reason)`, `message(data)` and
 * `error(message, code, rangeError)`.
 */
export const becomeFacade = (webSocket, conn, native) => {
  Object.defineProperty(webSocket, 'bufferedAmount', {
    configurable: true,
    get: () => native.bufferedAmount(conn),
  });

  webSocket.send = (data, options, callback) => {
    const done = typeof options == 'function' ? options : callback;
    if (webSocket.readyState != webSocket.OPEN) {
      done?.(
        new Error('WebSocket is not open: readyState ' + webSocket.readyState),
      );
      return;
    }
    native.sendNative(
      conn,
      typeof data == 'string' ? data : Buffer.from(data).toString('utf8'),
    );
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

  // The native plane answers pings itself; a user's ping or pong has nothing to add.
  webSocket.ping = (_data, _mask, callback) =>
    callback && process.nextTick(callback);
  webSocket.pong = webSocket.ping;

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
