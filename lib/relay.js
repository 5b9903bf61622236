// The relay behind both of TinyBase's servers: it wires the user's WebSocketServer to the native
// hub, runs what must be JS (listeners, persisters, the per-path server client) and owns nothing
// else. Each public creator picks which of its methods to expose.

import {createRequire} from 'node:module';
import {accessSettings, createAccess} from './access.js';
import {
  becomeFacade,
  closeNativeAsWs,
  emitClosed,
  emitError,
  emitMessage,
  emitPong,
  frameError,
} from './facade.js';
import {registerClients} from './clients.js';
import {createListeners} from './listeners.js';
import {attachMetrics, createMetricsSource} from './metrics.js';
import {createPaths} from './paths.js';
import {createPlaneCounts} from './plane-stats.js';
import {createServerClients} from './server-client.js';
import {detach, planeOf, release, stopReading} from './takeover.js';
import {nativeUpgradeOf, takeUpgrades} from './upgrade.js';
import {
  handOver,
  listenSettings,
  registerAddress,
  startListening,
} from './listen.js';

const {NativeServer} = createRequire(import.meta.url)('./native.cjs');

const PATH_REGEX = /\/([^?]*)/;
const JOIN = Symbol('join');
// Marks a request whose upgrade the native plane answers: no ws 'connection' follows it.
const UPGRADED = Symbol('upgraded');
const MULTIPLEX_PROTOCOL = 'tinybase';
const MAX_PAYLOAD_BYTES = 16777216;
const OVERFLOW_CLOSE_CODE = 1013;
const EVENTS_PER_TURN = 16;
const DEFAULT_HEARTBEAT_SECONDS = 30;
const DEFAULT_HEARTBEAT_MISSES = 2;

const listen = (emitter, event, listener) => {
  emitter.on(event, listener);
  return () => emitter.off(event, listener);
};

/**
 * Relays for TinyBase clients connected to `webSocketServer`, with TinyBase's other createWsServer
 * arguments by name and this package's options last (see index.js). `expose` picks, from every method of
 * TinyBase's WsServer, those the caller's server offers, and returns the object handed to users.
 */
export const startRelay = (
  expose,
  webSocketServer,
  {
    createPersisterForPath,
    onIgnoredError,
    requestTimeoutSeconds = 1,
    fragmentSize,
  } = {},
  {
    heartbeatSeconds = DEFAULT_HEARTBEAT_SECONDS,
    heartbeatMisses = DEFAULT_HEARTBEAT_MISSES,
    cluster,
    keepPathSeconds = 0,
    nativeUpgrade = false,
    listen: listenOptions,
    ...accessOptions
  } = {},
) => {
  if (cluster !== undefined && typeof cluster?.redis != 'string') {
    throw new TypeError('cluster.redis must be a Redis URL');
  }
  const listening =
    listenOptions === undefined
      ? undefined
      : listenSettings(webSocketServer, listenOptions, accessOptions.authorize);
  // What the plane's listening socket hands over may still be an upgrade the plane can answer.
  const takesUpgrades = nativeUpgrade || listening !== undefined;
  const upgradeServer = webSocketServer?._server;
  if (takesUpgrades && typeof upgradeServer?.on != 'function') {
    throw new TypeError(
      'nativeUpgrade needs a WebSocketServer created with `port` or `server`',
    );
  }
  let destroying;
  // Set once destroy() stops every path: their failures then reject destroy() instead.
  let stoppingAll = false;
  const pathStops = [];
  let nextConn = 1;
  // conn -> {webSocket, native, closed}, for the connections ws upgraded: `native` when the plane
  // took the socket over, `closed` counts its close
  const conns = new Map();
  // The connections whose upgrade the plane answered: ws never saw them, so destroy() and
  // closeClients close them here. There may be very many, so each is only its number, and is
  // given a promise of its close only while something waits for it (conn -> {closed, resolve}).
  const upgraded = new Set();
  const upgradedClosing = new Map();
  const planeCounts = createPlaneCounts();
  const webSockets = new Set();
  const serverRemovers = [];
  // webSocket -> what removes the listeners added to it, dropped once it closes
  const socketRemovers = new Map();

  const handleError = (error) => {
    try {
      onIgnoredError?.(error);
    } catch {
      // An error handler that throws has nowhere left to report to.
    }
  };

  const listeners = createListeners(() => wsServer, handleError);
  const paths = createPaths();

  // Events are applied strictly in the order the hub produced them, even when applying one (a
  // listener, a persister) leads to more.
  const queue = [];
  let applying = false;
  const apply = (events) => {
    queue.push(...events);
    if (applying) {
      return;
    }
    applying = true;
    try {
      for (let event; (event = queue.shift()) !== undefined;) {
        handleEvent(event);
      }
    } finally {
      applying = false;
    }
  };

  const native = new NativeServer(
    {
      requestTimeoutSeconds,
      fragmentSize: fragmentSize ?? undefined,
      hasFactory: typeof createPersisterForPath == 'function',
      heartbeatIntervalMs: heartbeatSeconds * 1000,
      heartbeatMisses,
      clusterRedis: cluster?.redis,
      clusterPrefix: cluster?.prefix,
      keepPathSeconds,
      ...accessSettings(accessOptions),
    },
    () => scheduleTurn(),
  );
  let address;
  if (listening !== undefined) {
    try {
      address = startListening(native, listening);
    } catch (error) {
      native.shutdown();
      throw error;
    }
  }
  const metrics = createMetricsSource(native);
  const access = createAccess(
    accessOptions.authorize,
    handleError,
    // A decision that comes once destroy() began would start a path it already stopped.
    (conn, ticket, channelId, decision) =>
      destroying ?? apply(native.authorized(conn, ticket, channelId, decision)),
  );

  // Native events are taken a few at a time in turns of their own, at most one per pass of the
  // event loop, so timers and I/O run between turns however much the relay queues for JS. The
  // count is small because what the server clients start for each event runs on as microtasks
  // after the turn. The hub's wake-ups only schedule a turn: running one per wake-up chained many
  // in a single poll phase.
  let turnScheduled = false;
  const scheduleTurn = () => {
    if (!turnScheduled) {
      turnScheduled = true;
      setImmediate(takeTurn);
    }
  };
  const takeTurn = () => {
    turnScheduled = false;
    const events = native.drain(EVENTS_PER_TURN);
    apply(events);
    if (events.length == EVENTS_PER_TURN) {
      scheduleTurn();
    }
  };

  const serverClients = createServerClients({
    native,
    getClientIds: paths.getClientIds,
    apply,
    createPersisterForPath,
    handleError,
    requestTimeoutSeconds,
  });

  // TinyBase's sendToClient, for sockets that stay in JS: the backlog limit needs bufferedAmount.
  const sendJs = (webSocket, payload) => {
    const size = Buffer.byteLength(payload, 'utf8');
    if (
      size > MAX_PAYLOAD_BYTES ||
      (webSocket.bufferedAmount ?? 0) + size > MAX_PAYLOAD_BYTES
    ) {
      if (webSocket.readyState == webSocket.OPEN) {
        native.jsSlowConsumer();
        const error = new Error('tinybase:15:socket');
        try {
          handleError(error);
        } finally {
          webSocket.close(OVERFLOW_CLOSE_CODE, error.message);
        }
      }
    } else if (webSocket.readyState == webSocket.OPEN) {
      webSocket.send(payload);
    }
  };

  const handlers = {
    clientIds: ({pathId, clientId, change}) => {
      paths.changeClient(pathId, clientId, change);
      listeners.callClientIdsListeners(pathId, clientId, change);
    },
    pathIds: ({pathId, change}) => {
      paths.changePath(pathId, change);
      listeners.callPathIdsListeners(pathId, change);
    },
    startPath: ({path, pathId}) => {
      serverClients.start(path, pathId);
      apply(native.factoryCalled(path));
    },
    stopPath: ({path}) => settleStop(serverClients.stop(path)),
    stopPaths: ({paths: keys}) => settleStop(serverClients.stopTogether(keys)),
    toServer: ({path, text}) => serverClients.receive(path, text),
    error: ({text}) => handleError(new Error(text)),
    send: ({conn, text}) => {
      const webSocket = conns.get(conn)?.webSocket;
      if (webSocket !== undefined) {
        sendJs(webSocket, text);
      }
    },
    close: ({conn, code, text}) => conns.get(conn)?.webSocket.close(code, text),
    closed: ({conn, code, text}) => {
      const facade = facadeOf(conn);
      forget(conn);
      if (facade) {
        emitClosed(facade, code, text);
      }
    },
    message: ({conn, text, binary}) =>
      withFacade(conn, emitMessage, binary ?? text, binary !== undefined),
    pong: ({conn, text}) => withFacade(conn, emitPong, text),
    authorize: access.decide,
    upgraded: ({conn}) => trackUpgraded(conn),
    connection: ({fd}) => handOver(upgradeServer, fd),
    // A connection whose upgrade the plane answered has no WebSocket to emit it: its error is
    // reported as the server's 'error' listener on a WebSocket reports it.
    socketError: ({conn, text, errorCode, rangeError}) => {
      if (upgraded.has(conn)) {
        handleError(frameError(text, errorCode, rangeError));
      } else {
        withFacade(conn, emitError, text, errorCode, rangeError);
      }
    },
  };
  const handleEvent = (event) => handlers[event.kind](event);

  // A stop's failure is reported, or, once destroy() stops every path, fails destroy().
  const settleStop = (stopping) => {
    if (stoppingAll) {
      pathStops.push(stopping);
    } else {
      stopping.catch(handleError);
    }
  };

  // What the API reads reflects every effect a client can have seen: events still on their way
  // from the native plane are applied first. A listener called while events are applied reads the
  // server as of its own change instead, as on TinyBase's single thread.
  const upToDate =
    (read) =>
    (...args) => {
      if (!applying) {
        apply(native.takeAll());
      }
      return read(...args);
    };

  const facadeOf = (conn) => {
    const entry = conns.get(conn);
    return entry?.native ? entry.webSocket : undefined;
  };
  const withFacade = (conn, emit, ...args) => {
    const facade = facadeOf(conn);
    if (facade) {
      emit(facade, ...args);
    }
  };

  const addWebSocketListener = (webSocket, event, listener) => {
    let removers = socketRemovers.get(webSocket);
    if (removers === undefined) {
      removers = [];
      socketRemovers.set(webSocket, removers);
    }
    removers.push(listen(webSocket, event, listener));
  };
  const removeWebSocketListeners = (webSocket) => {
    for (const remove of socketRemovers.get(webSocket) ?? []) {
      remove();
    }
    socketRemovers.delete(webSocket);
  };

  const forget = (conn) => {
    if (upgraded.delete(conn)) {
      planeCounts.closedUpgraded();
      upgradedClosing.get(conn)?.resolve();
      upgradedClosing.delete(conn);
    } else {
      conns.get(conn)?.closed();
      conns.delete(conn);
    }
    access.forget(conn);
  };

  const openNative = (webSocket, conn, fd, pathId, clientId, multiplexed) => {
    const head = detach(webSocket);
    const events = native.adopt(conn, fd, head, {
      pathId,
      clientId,
      multiplexed,
    });
    becomeFacade(webSocket, conn, native);
    conns.set(conn, {
      webSocket,
      native: true,
      closed: planeCounts.opened(webSocket),
    });
    release(webSocket._socket);
    apply(events);
  };

  const openJs = (webSocket, conn, reason, pathId, clientId, multiplexed) => {
    conns.set(conn, {
      webSocket,
      native: false,
      closed: planeCounts.opened(webSocket, reason),
    });
    addWebSocketListener(webSocket, 'message', (data) =>
      apply(native.receiveJs(conn, data.toString('utf8'))),
    );
    addWebSocketListener(webSocket, 'close', (code) => {
      forget(conn);
      apply(native.closeJs(conn, code));
    });
    apply(native.openJs(conn, {pathId, clientId, multiplexed}));
  };

  // From the moment ws writes a 101 until its 'connection' is registered, native relaying to
  // that path waits (see Hub::joining). The same tick normally ends it; setImmediate covers a
  // 'connection' that never comes or comes later (noServer users emit it themselves).
  const onHeaders = (_headers, request) => {
    const pathId = request?.url?.match?.(PATH_REGEX)?.[1];
    if (pathId !== undefined && !request[UPGRADED]) {
      native.joining(pathId);
      const join = {pathId};
      request[JOIN] = join;
      setImmediate(() => endJoin(join));
    }
  };
  const endJoin = (join) => {
    if (join !== undefined && !join.ended) {
      join.ended = true;
      apply(native.joined(join.pathId));
    }
  };

  // Input held while the client joined is routed once every 'connection' listener has run, so
  // listeners added after ours see its messages and its close, as with ws.
  const onConnection = (webSocket, request) => {
    try {
      register(webSocket, request);
    } finally {
      const join = request?.[JOIN];
      process.nextTick(() => endJoin(join));
    }
  };

  const register = (webSocket, request) => {
    webSockets.add(webSocket);
    addWebSocketListener(webSocket, 'error', handleError);
    addWebSocketListener(webSocket, 'close', () => {
      webSockets.delete(webSocket);
      removeWebSocketListeners(webSocket);
    });
    if (destroying) {
      webSocket.close();
      return;
    }
    const pathId = request?.url?.match?.(PATH_REGEX)?.[1];
    const clientId = request?.headers?.['sec-websocket-key'];
    if (pathId === undefined || clientId === undefined) {
      return;
    }
    const multiplexed = webSocket.protocol == MULTIPLEX_PROTOCOL;
    const conn = nextConn++;
    access.remember(conn, request);
    const {fd, reason} = planeOf(webSocket, request);
    if (fd === undefined) {
      openJs(webSocket, conn, reason, pathId, clientId, multiplexed);
    } else {
      openNative(webSocket, conn, fd, pathId, clientId, multiplexed);
    }
  };

  // A connection whose upgrade the plane answered is counted until it closes, for destroy() and
  // closeClients to close, as ws never saw it.
  const trackUpgraded = (conn) => {
    upgraded.add(conn);
    planeCounts.openedUpgraded();
  };

  // Resolves once the plane-answered `conn` has closed.
  const upgradedClosed = (conn) => {
    let closing = upgradedClosing.get(conn);
    if (closing === undefined) {
      closing = {};
      closing.closed = new Promise((resolve) => (closing.resolve = resolve));
      upgradedClosing.set(conn, closing);
    }
    return closing.closed;
  };

  // The plane answers an upgrade ws would accept as it is; ws still emits 'headers' for it, so
  // listeners may add to the response, but no WebSocket and no 'connection' exist for it.
  const onUpgrade = (request, socket, bodyHead) => {
    const pathId = request.url?.match(PATH_REGEX)?.[1];
    const upgrade =
      destroying === undefined && pathId !== undefined
        ? nativeUpgradeOf(webSocketServer, request, socket)
        : undefined;
    if (upgrade === undefined) {
      return false;
    }
    const {fd, key, protocol, headers} = upgrade;
    request[UPGRADED] = true;
    webSocketServer.emit('headers', headers, request);
    const conn = nextConn++;
    access.remember(conn, request);
    const head = Buffer.concat([bodyHead, stopReading(socket)]);
    trackUpgraded(conn);
    let events;
    try {
      events = native.adopt(conn, fd, head, {
        pathId,
        clientId: key,
        multiplexed: protocol == MULTIPLEX_PROTOCOL,
        response: headers.concat('\r\n').join('\r\n'),
      });
    } catch (error) {
      forget(conn);
      socket.destroy();
      handleError(error);
      return true;
    }
    release(socket);
    apply(events);
    return true;
  };
  const restoreUpgrades = takesUpgrades
    ? takeUpgrades(upgradeServer, onUpgrade)
    : () => {};

  serverRemovers.push(listen(webSocketServer, 'error', handleError));
  serverRemovers.push(listen(webSocketServer, 'headers', onHeaders));
  const removeConnectionListener = listen(
    webSocketServer,
    'connection',
    onConnection,
  );

  const closeWebSocket = (webSocket, code, reason) =>
    new Promise((resolve, reject) => {
      if (webSocket.readyState == webSocket.CLOSED) {
        resolve();
        return;
      }
      const removeCloseListener = listen(webSocket, 'close', () => {
        removeCloseListener();
        resolve();
      });
      try {
        webSocket.close(code, reason);
      } catch (error) {
        removeCloseListener();
        reject(error);
      }
    });

  // Every client, also those whose upgrade the plane answered, which ws does not know.
  const closeClients = (code, reason) => [
    ...[...webSockets].map((webSocket) =>
      closeWebSocket(webSocket, code, reason),
    ),
    ...[...upgraded].map((conn) => {
      const closed = upgradedClosed(conn);
      closeNativeAsWs(native, conn, code, reason);
      return closed;
    }),
  ];

  // The server's own close error wins over any socket's, as in TinyBase.
  const closeWebSocketServer = async () => {
    const results = await Promise.allSettled([
      new Promise((resolve, reject) =>
        webSocketServer.close((error) => (error ? reject(error) : resolve())),
      ),
      ...closeClients(),
    ]);
    const failure = results.find(({status}) => status == 'rejected');
    if (failure) {
      throw failure.reason;
    }
  };

  // As TinyBase: closing starts, every path stops at once, and the server's close error wins
  // over a path's.
  const destroy = () =>
    (destroying ??= (async () => {
      stoppingAll = true;
      // Until the paths are saved, what still arrives goes to the HTTP server (a health check,
      // say) rather than finding the port closed; the listening socket closes with the plane.
      native.stopAnswering();
      restoreUpgrades();
      removeConnectionListener();
      const serverClosing = closeWebSocketServer().then(
        () => undefined,
        (error) => [error],
      );
      apply(native.stopAll());
      const stopped = await Promise.allSettled(pathStops);
      const serverFailure = await serverClosing;
      await serverClients.settled();
      for (const remove of serverRemovers) {
        remove();
      }
      for (const webSocket of [...socketRemovers.keys()]) {
        removeWebSocketListeners(webSocket);
      }
      for (const conn of [...conns.keys(), ...upgraded]) {
        forget(conn);
      }
      webSockets.clear();
      native.shutdown();
      metrics.stop();
      if (serverFailure) {
        throw serverFailure[0];
      }
      const pathFailure = stopped.find(({status}) => status == 'rejected');
      if (pathFailure) {
        throw pathFailure.reason;
      }
    })());

  const wsServer = expose({
    getWebSocketServer: () => webSocketServer,
    getPathIds: upToDate(paths.getPathIds),
    getClientIds: upToDate(paths.getClientIds),
    addPathIdsListener: (listener) => listeners.addPathIdsListener(listener),
    addClientIdsListener: (pathId, listener) =>
      listeners.addClientIdsListener(pathId, listener),
    delListener: (listenerId) => {
      listeners.delListener(listenerId);
      return wsServer;
    },
    getStats: upToDate(paths.getStats),
    destroy,
  });
  planeCounts.register(wsServer);
  if (address !== undefined) {
    registerAddress(wsServer, address);
  }
  registerClients(wsServer, async (code, reason) => {
    await Promise.all(closeClients(code, reason));
  });
  attachMetrics(wsServer, metrics);
  return wsServer;
};
