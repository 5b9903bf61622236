// Closing every client of a server, whichever way it connected: with `nativeUpgrade` the
// WebSocketServer's `clients` lacks those whose upgrade the native plane answered.

// wsServer -> what closes its clients
const closers = new WeakMap();

export const registerClients = (wsServer, close) =>
  closers.set(wsServer, close);

/**
 * Closes every client connection of `wsServer` with `code` and `reason` (as ws's
 * `WebSocket.close` takes them) and resolves once all have closed.
 */
export const closeClients = async (wsServer, code, reason) => {
  const close = closers.get(wsServer);
  if (close === undefined) {
    throw new TypeError('not a WsServer of this package');
  }
  await close(code, reason);
};
