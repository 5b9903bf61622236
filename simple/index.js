// TinyBase's relay-only server, createWsServerSimple, on the native relay. Without a persister
// TinyBase's full server relays exactly as the simple one does, so this is that server with only
// the simple one's two methods exposed, and nothing reported: the simple server has no
// onIgnoredError.

import {startRelay} from '../lib/relay.js';

const exposeSimple = ({getWebSocketServer, destroy}) =>
  Object.freeze({getWebSocketServer, destroy});

/**
 * Creates a WsServerSimple relaying between TinyBase clients connected to `webSocketServer`, as
 * TinyBase's own `createWsServerSimple` does. The optional second argument takes the native
 * plane's options of createWsServer (heartbeat, cluster, access, nativeUpgrade), all but
 * `keepPathSeconds`, which only concerns persisted paths.
 */
export const createWsServerSimple = (webSocketServer, nativeOptions) =>
  startRelay(exposeSimple, webSocketServer, {}, nativeOptions);
