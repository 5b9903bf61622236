import {once} from 'node:events';
import {statSync} from 'node:fs';
import {mkdir} from 'node:fs/promises';
import {createServer} from 'node:http';
import {join, resolve} from 'node:path';
import {WebSocketServer} from 'ws';
import {createMergeableStore} from 'tinybase';
import {createFilePersister} from 'tinybase/persisters/persister-file';
import {createJwtAuthorize} from './auth.js';
import {pathIdToFileName} from './file-names.js';
import {createOperations} from './operations.js';

const GOING_AWAY = 1001;
const SHUTTING_DOWN = 'server shutting down';

const isEmptyFile = (filePath) => {
  try {
    return statSync(filePath).size == 0;
  } catch {
    return false;
  }
};

const urlOf = ({address, family, port}) =>
  `ws://${family == 'IPv6' || family == 6 ? `[${address}]` : address}:${port}`;

const closeHttpServer = (httpServer) =>
  new Promise((resolve) => {
    httpServer.close(() => resolve());
    httpServer.closeAllConnections();
  });

/**
 * Starts a sync server the way the command line asks for one.
 *
 * `createWsServer` is passed in so that the same code runs over this
 * package's native server and over TinyBase's own; `registerMetrics`, when
 * given, adds the server's metrics to `/metrics`, and `getListenAddress`, when
 * given, has the server listen on its native plane. `log` has `info`,
 * `verbose` and `error`, each taking a message and fields for JSON logs.
 */
export const startSyncServer = async ({
  createWsServer,
  registerMetrics,
  closeClients,
  getListenAddress,
  port,
  host,
  dataDir,
  cluster,
  auth = {},
  keepPathSeconds,
  metrics,
  log,
}) => {
  // A key that cannot be read fails the start, before anything listens.
  const authorize = await createJwtAuthorize(auth);
  const absoluteDataDir = dataDir === undefined ? undefined : resolve(dataDir);
  if (absoluteDataDir !== undefined) {
    await mkdir(absoluteDataDir, {recursive: true});
  }

  // One port for both: WebSocket upgrades go to the sync server, plain requests
  // to the operations endpoints. The native server listens on its plane, and
  // hands the HTTP server what it does not answer; TinyBase's needs the HTTP
  // server to listen, and a port already in use fails that listen before ws
  // (which would re-emit the error where nothing listens yet) is attached.
  const operations = createOperations({enabled: metrics, log});
  const httpServer = createServer(operations.handleRequest);
  const listensNatively = getListenAddress !== undefined;
  if (!listensNatively) {
    httpServer.listen(port, host);
    await once(httpServer, 'listening');
  }
  const webSocketServer = new WebSocketServer({server: httpServer});

  // TinyBase's file persister starts a new path by creating an empty file and
  // then failing to parse it: that is no failure. Anything else may mean lost
  // data, so it is shown even when not verbose.
  const persisterErrorHandler = (pathId, filePath) => (error) =>
    (error instanceof SyntaxError && isEmptyFile(filePath)
      ? log.verbose
      : log.error)(
      `path ${JSON.stringify(pathId)}: ${error?.message ?? error}`,
      {
        event: 'persister error',
        pathId,
      },
    );

  const createPersisterForPath =
    absoluteDataDir === undefined
      ? undefined
      : (pathId) => {
          const filePath = join(absoluteDataDir, pathIdToFileName(pathId));
          return createFilePersister(
            createMergeableStore(),
            filePath,
            persisterErrorHandler(pathId, filePath),
          );
        };

  let wsServer;
  try {
    wsServer = createWsServer(
      webSocketServer,
      createPersisterForPath,
      // A cluster's link to Redis going away is worth seeing at every level.
      (error) =>
        (String(error?.message).startsWith('cluster:')
          ? log.error
          : log.verbose)(`ignored error: ${error?.message ?? error}`, {
          event: 'ignored error',
        }),
      undefined,
      undefined,
      // The command owns its port, so the native plane accepts on it.
      {
        cluster,
        authorize,
        keepPathSeconds,
        ...(listensNatively ? {listen: {port, host}} : {}),
      },
    );
  } catch (error) {
    webSocketServer.close();
    await closeHttpServer(httpServer);
    throw error;
  }
  operations.register(wsServer, registerMetrics);

  // Path ids are whatever clients put in their URLs: JSON quoting keeps
  // control characters out of the log.
  wsServer.addPathIdsListener((_, pathId, addedOrRemoved) => {
    const change = addedOrRemoved > 0 ? 'opened' : 'closed';
    log.verbose(`path ${JSON.stringify(pathId)} ${change}`, {
      event: `path ${change}`,
      pathId,
    });
  });
  wsServer.addClientIdsListener(null, (_, pathId, clientId, addedOrRemoved) => {
    const change = addedOrRemoved > 0 ? 'joined' : 'left';
    log.verbose(`client ${clientId} ${change} path ${JSON.stringify(pathId)}`, {
      event: `client ${change}`,
      pathId,
      clientId,
    });
  });

  // Health turns 503 first, so a load balancer stops sending clients while
  // the others are told to go away; it answers until everything is saved.
  const stop = async () => {
    operations.drain();
    webSocketServer.close();
    if (closeClients) {
      // Also those whose upgrade the native plane answered, which ws does not know.
      closeClients(wsServer, GOING_AWAY, SHUTTING_DOWN).catch((error) =>
        log.error(`closing clients: ${error?.message ?? error}`, {
          event: 'close error',
        }),
      );
    } else {
      for (const client of webSocketServer.clients) {
        client.close(GOING_AWAY, SHUTTING_DOWN);
      }
    }
    try {
      await wsServer.destroy();
    } finally {
      await closeHttpServer(httpServer);
    }
  };

  return {
    url: urlOf(
      listensNatively ? getListenAddress(wsServer) : httpServer.address(),
    ),
    dataDir: absoluteDataDir,
    stop,
  };
};
