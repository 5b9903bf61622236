// The package's API: TinyBase's two WebSocket servers over the native relay, and what this
// package adds beside them.

import {startRelay} from './lib/relay.js';

export {createWsServerSimple} from './simple/index.js';
export {closeClients} from './lib/clients.js';
export {getListenAddress} from './lib/listen.js';
export {getConnectionPlane, getPlaneStats} from './lib/plane-stats.js';
export {getMetrics, registerMetrics} from './lib/metrics.js';

/**
 * Creates a WsServer that synchronizes TinyBase clients connected to `webSocketServer`, exactly as
 * TinyBase's own `createWsServer` does. The optional last argument tunes the native plane:
 * `{heartbeatSeconds = 30, heartbeatMisses = 2}` (a heartbeat of 0 turns it off),
 * with `cluster: {redis, prefix = 'tinybase'}` joins the servers sharing that Redis and prefix,
 * with `keepPathSeconds` keeps a persisted path loaded that long after its last client leaves,
 * with `nativeUpgrade` answers WebSocket upgrades on the native plane (see lib/upgrade.js),
 * with `listen: {port, host}` listens and accepts on the native plane itself (see lib/listen.js),
 * and controls access with `{authorize, maxClientsPerPath, maxMessagesPerSecond}` (see
 * lib/access.js).
 */
export const createWsServer = (
  webSocketServer,
  createPersisterForPath,
  onIgnoredError,
  requestTimeoutSeconds,
  fragmentSize,
  nativeOptions,
) =>
  startRelay(
    Object.freeze,
    webSocketServer,
    {
      createPersisterForPath,
      onIgnoredError,
      requestTimeoutSeconds,
      fragmentSize,
    },
    nativeOptions,
  );
