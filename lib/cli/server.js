import {once} from 'node:events';
import {statSync} from 'node:fs';
import {mkdir} from 'node:fs/promises';
import {join, resolve} from 'node:path';
import {WebSocketServer} from 'ws';
import {createMergeableStore} from 'tinybase';
import {createFilePersister} from 'tinybase/persisters/persister-file';
import {pathIdToFileName} from './file-names.js';

const GOING_AWAY = 1001;

const isEmptyFile = (filePath) => {
  try {
    return statSync(filePath).size == 0;
  } catch {
    return false;
  }
};

const urlOf = ({address, family, port}) =>
  `ws://${family == 'IPv6' || family == 6 ? `[${address}]` : address}:${port}`;

/**
 * Starts a sync server the way the command line asks for one.
 *
 * `createWsServer` is passed in so that the same code runs over this
 * package's native server and over TinyBase's own. `log` has `info`,
 * `verbose` and `error`, each taking one line.
 */
export const startSyncServer = async ({
  createWsServer,
  port,
  host,
  dataDir,
  cluster,
  log,
}) => {
  const absoluteDataDir = dataDir === undefined ? undefined : resolve(dataDir);
  if (absoluteDataDir !== undefined) {
    await mkdir(absoluteDataDir, {recursive: true});
  }

  const webSocketServer = new WebSocketServer({port, host});
  // The WsServer takes over the 'error' event and passes it on as an ignored
  // error, so a port already in use has to be caught before it is created.
  await once(webSocketServer, 'listening');

  // TinyBase's file persister starts a new path by creating an empty file and
  // then failing to parse it: that is no failure. Anything else may mean lost
  // data, so it is shown even when not verbose.
  const persisterErrorHandler = (pathId, filePath) => (error) =>
    (error instanceof SyntaxError && isEmptyFile(filePath)
      ? log.verbose
      : log.error)(
      `path ${JSON.stringify(pathId)}: ${error?.message ?? error}`,
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
          : log.verbose)(`ignored error: ${error?.message ?? error}`),
      undefined,
      undefined,
      cluster === undefined ? undefined : {cluster},
    );
  } catch (error) {
    webSocketServer.close();
    throw error;
  }

  // Path ids are whatever clients put in their URLs: JSON quoting keeps
  // control characters out of the log.
  wsServer.addPathIdsListener((_, pathId, addedOrRemoved) =>
    log.verbose(
      `path ${JSON.stringify(pathId)} ${addedOrRemoved > 0 ? 'opened' : 'closed'}`,
    ),
  );
  wsServer.addClientIdsListener(null, (_, pathId, clientId, addedOrRemoved) =>
    log.verbose(
      `client ${clientId} ${addedOrRemoved > 0 ? 'joined' : 'left'} path ${JSON.stringify(pathId)}`,
    ),
  );

  const stop = async () => {
    // Stops accepting first, so no client can slip in while the others are
    // being told to go away.
    webSocketServer.close();
    for (const client of webSocketServer.clients) {
      client.close(GOING_AWAY, 'server shutting down');
    }
    await wsServer.destroy();
  };

  return {
    url: urlOf(webSocketServer.address()),
    dataDir: absoluteDataDir,
    stop,
  };
};
