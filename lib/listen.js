// The `listen` option: the package owns the listening socket and the native plane accepts on it.
// A plain WebSocket upgrade ws would accept as it is is answered there, without the JS thread;
// every other connection (plain HTTP requests, upgrades ws must judge) reaches the
// WebSocketServer's HTTP server as if that server had accepted it.

import {Socket} from 'node:net';
import {getSystemErrorMap} from 'node:util';

// wsServer -> the address its plane listens on
const addresses = new WeakMap();

// The object on `object`'s prototype chain that defines `key` itself.
const ownerOf = (object, key) => {
  for (
    let owner = object;
    owner != null;
    owner = Object.getPrototypeOf(owner)
  ) {
    if (Object.hasOwn(owner, key)) {
      return owner;
    }
  }
  return undefined;
};

/**
 * What the native plane needs to listen as `listen` ({port, host}) asks for `webSocketServer`:
 * which upgrades it may answer as ws would. Throws a TypeError for a server it cannot listen for.
 */
export const listenSettings = (webSocketServer, listen, authorize) => {
  const server = webSocketServer?._server;
  if (typeof server?.emit != 'function' || server.listening !== false) {
    throw new TypeError(
      'listen needs a WebSocketServer created with a `server` that is not listening',
    );
  }
  const {port, host, backlog} = listen ?? {};
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new TypeError(`listen.port must be 0 to 65535, not ${port}`);
  }
  if (host !== undefined && typeof host != 'string') {
    throw new TypeError('listen.host must be a string');
  }
  if (backlog !== undefined && !(Number.isInteger(backlog) && backlog > 0)) {
    throw new TypeError(
      `listen.backlog must be a positive whole number, not ${backlog}`,
    );
  }
  const options = webSocketServer.options ?? {};
  return {
    port,
    host,
    backlog,
    // Checks only JS can make leave every upgrade to ws: a verifyClient, an authorize that is
    // handed the request, a subclass's own shouldHandle, or 'headers' listeners already added.
    answers:
      !options.verifyClient &&
      authorize === undefined &&
      ownerOf(webSocketServer, 'shouldHandle') ==
        ownerOf(webSocketServer, 'completeUpgrade') &&
      webSocketServer.listenerCount('headers') == 0,
    path: options.path || undefined,
    deflate: !!options.perMessageDeflate,
    handlesProtocols: !!options.handleProtocols,
  };
};

/**
 * Has the native plane listen with `settings` (from listenSettings) and returns the address it
 * listens on. A failure is thrown as Node throws its own listen's: `EADDRINUSE` and the like.
 */
export const startListening = (native, settings) => {
  const {address, family, port, errno} = native.listen(settings);
  if (errno != null) {
    const [code, description] = getSystemErrorMap().get(-errno) ?? [
      'UNKNOWN',
      'unknown error',
    ];
    const host = settings.host ?? '::';
    throw Object.assign(
      new Error(`listen ${code}: ${description} ${host}:${settings.port}`),
      {
        code,
        errno: -errno,
        syscall: 'listen',
        address: host,
        port: settings.port,
      },
    );
  }
  return {address, family, port};
};

/** Gives `server` a connection the plane accepted and left unread, as if it had accepted it. */
export const handOver = (server, fd) =>
  server.emit('connection', new Socket({fd, readable: true, writable: true}));

export const registerAddress = (wsServer, address) =>
  addresses.set(wsServer, Object.freeze(address));

/**
 * The address the native plane listens on for `wsServer` (created with the `listen` option), as
 * `server.address()` gives it, or undefined for a server without the option.
 */
export const getListenAddress = (wsServer) => addresses.get(wsServer);
