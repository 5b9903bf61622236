// Keeps the `ws` WebSocket object that user code holds faithful to a connection the native plane
// has taken over: its state, its events and its methods all act on the native connection.
//
// A taken-over socket gets a prototype of its own rather than methods of its own: one prototype
// switch per connection instead of a closure per method, which a connection storm pays for
// thousands of times on the JS thread and keeps in the heap for as long as the connections live.
// That prototype extends the socket's own class (whichever copy of ws, or user subclass, made it),
// so `instanceof` and everything the facade does not replace behave as before.

const CLOSING = 2;
const CLOSED = 3;
// The most a Close frame's reason may take, in bytes.
const MAX_CLOSE_REASON_BYTES = 123;

const CONN = Symbol('conn');
const NATIVE = Symbol('native');

// ws's send(), ping() and pong() take their callback last, after optional arguments.
const callbackOf = (...args) => args.find((arg) => typeof arg == 'function');

/**
 * Closes a native connection as ws's `WebSocket.close(code, reason)` does, throwing what it throws
 * for a reason too long or a code that may not be sent, before anything changes.
 */
export const closeNativeAsWs = (native, conn, code, reason) => {
  if (Buffer.byteLength(String(reason ?? '')) > MAX_CLOSE_REASON_BYTES) {
    throw new RangeError('The message must not be greater than 123 bytes');
  }
  if (
    (code !== undefined && typeof code != 'number') ||
    !native.closeNative(conn, code, String(reason ?? ''))
  ) {
    throw new TypeError('First argument must be a valid error code number');
  }
};

const facadeClassOf = (WebSocketClass) =>
  class TakenOverWebSocket extends WebSocketClass {
    get bufferedAmount() {
      return this[NATIVE].bufferedAmount(this[CONN]);
    }

    send(data, options, callback) {
      const done = callbackOf(options, callback);
      if (this.readyState != this.OPEN) {
        done?.(
          new Error('WebSocket is not open: readyState ' + this.readyState),
        );
        return;
      }
      // As ws: numbers go as text, other data as binary unless `binary` says otherwise.
      const text = typeof data == 'number' ? String(data) : data;
      if (options?.binary ?? typeof text != 'string') {
        this[NATIVE].sendNativeBinary(this[CONN], Buffer.from(text));
      } else {
        this[NATIVE].sendNative(this[CONN], Buffer.from(text).toString('utf8'));
      }
      if (done) {
        process.nextTick(done);
      }
    }

    // As ws's close(): no code sends a Close without a status, and a code that may not be sent
    // throws before anything changes.
    close(code, reason) {
      if (this.readyState >= CLOSING) {
        return;
      }
      closeNativeAsWs(this[NATIVE], this[CONN], code, reason);
      this._readyState = CLOSING;
    }

    terminate() {
      if (this.readyState != CLOSED) {
        this._readyState = CLOSING;
        this[NATIVE].terminateNative(this[CONN]);
      }
    }

    // A ping goes out natively and its pong comes back as ws's 'pong' event, so ws's own
    // heartbeat pattern keeps working. The plane answers the peer's pings itself.
    ping(data, mask, callback) {
      const done = callbackOf(data, mask, callback);
      if (this.readyState == this.OPEN) {
        this[NATIVE].pingNative(
          this[CONN],
          typeof data == 'function' || data === undefined
            ? Buffer.alloc(0)
            : Buffer.from(String(data)),
        );
      }
      if (done) {
        process.nextTick(done);
      }
    }

    pong(data, mask, callback) {
      const done = callbackOf(data, mask, callback);
      if (done) {
        process.nextTick(done);
      }
    }

    // ws's pause() and resume() stop and restart reading the socket.
    pause() {
      setPaused(this, true);
    }

    resume() {
      setPaused(this, false);
    }
  };

// The socket's own class -> its facade's prototype, made once per class.
const facadePrototypes = new WeakMap();
const facadePrototypeOf = (webSocket) => {
  const WebSocketClass = Object.getPrototypeOf(webSocket).constructor;
  let prototype = facadePrototypes.get(WebSocketClass);
  if (prototype === undefined) {
    prototype = facadeClassOf(WebSocketClass).prototype;
    facadePrototypes.set(WebSocketClass, prototype);
  }
  return prototype;
};

// Not a private method: the instances never ran this class's constructor, so they carry no
// private brand.
const setPaused = (webSocket, paused) => {
  if (webSocket.readyState < CLOSING) {
    webSocket._paused = paused;
    webSocket[NATIVE].setPaused(webSocket[CONN], paused);
  }
};

// A 'message' listener added after the takeover still sees every message from then on.
function mirrorWhenListened(event) {
  if (event == 'message') {
    this[NATIVE].setMirrored(this[CONN], true);
  }
}
function stopMirroringWhenUnlistened(event) {
  if (event == 'message' && this.listenerCount('message') == 0) {
    this[NATIVE].setMirrored(this[CONN], false);
  }
}

/** Turns `webSocket` into a facade of native connection `conn`. */
export const becomeFacade = (webSocket, conn, native) => {
  // ws's own reader and writer for this socket will never run again; let them go.
  webSocket._receiver = null;
  webSocket._sender = null;
  webSocket[CONN] = conn;
  webSocket[NATIVE] = native;
  Object.setPrototypeOf(webSocket, facadePrototypeOf(webSocket));
  webSocket.on('newListener', mirrorWhenListened);
  webSocket.on('removeListener', stopMirroringWhenUnlistened);
};

// What the native side reports of a facade's connection, as ws would emit it.

export const emitClosed = (webSocket, code, reason) => {
  webSocket._readyState = CLOSED;
  webSocket.emit('close', code, Buffer.from(reason));
};

export const emitMessage = (webSocket, data, isBinary) =>
  webSocket.emit('message', Buffer.from(data), isBinary);

export const emitPong = (webSocket, data) =>
  webSocket.emit('pong', Buffer.from(data));

// A frame ws would reject: as after ws's receiver error, the socket is closing (the plane sent the
// status) and the error is emitted on the WebSocket, reaching its 'error' listeners.
/** The error ws's WebSocket emits for a frame it refuses. */
export const frameError = (message, code, rangeError) => {
  const error = new (rangeError ? RangeError : Error)(message);
  error.code = code;
  return error;
};

export const emitError = (webSocket, message, code, rangeError) => {
  if (webSocket.readyState < CLOSING) {
    webSocket._readyState = CLOSING;
  }
  webSocket.emit('error', frameError(message, code, rangeError));
};
