// Every form of TinyBase's createWsServer API, written against TinyBase's
// own module. native.ts is this file with only the import specifier changed,
// so both must type-check the same way.
import {WebSocketServer} from 'ws';
import {createMergeableStore, type MergeableStore} from 'tinybase';
import {createFilePersister} from 'tinybase/persisters/persister-file';
import {
  createWsServer,
  type ClientIdsListener,
  type PathIdsListener,
  type WsServer,
  type WsServerStats,
} from 'tinybase-ws-server-native';

const webSocketServer = new WebSocketServer({port: 0});

const relayOnly: WsServer = createWsServer(webSocketServer);

createWsServer(webSocketServer, (pathId) =>
  createFilePersister(createMergeableStore(), `${pathId}.json`),
);

createWsServer(webSocketServer, (pathId) => [
  createFilePersister(createMergeableStore(), `${pathId}.json`),
  (store: MergeableStore) => store.setValue('pathId', pathId),
]);

createWsServer(webSocketServer, async (pathId) =>
  createFilePersister(createMergeableStore(), `${pathId}.json`),
);

createWsServer(
  webSocketServer,
  async (
    pathId,
  ): Promise<
    [ReturnType<typeof createFilePersister>, (store: MergeableStore) => void]
  > => [
    createFilePersister(createMergeableStore(), `${pathId}.json`),
    (store) => store.setValue('pathId', pathId),
  ],
);

createWsServer(webSocketServer, (pathId) =>
  pathId.startsWith('private/')
    ? undefined
    : createFilePersister(createMergeableStore(), `${pathId}.json`),
);

createWsServer(
  webSocketServer,
  undefined,
  (error) => console.error(error),
  5,
  64 * 1024,
);

const onPathIds: PathIdsListener = (wsServer, pathId, addedOrRemoved) =>
  console.log(wsServer.getClientIds(pathId), addedOrRemoved == 1);
const onClientIds: ClientIdsListener = (
  wsServer,
  pathId,
  clientId,
  addedOrRemoved,
) => console.log(wsServer.getStats(), pathId, clientId, addedOrRemoved);

const pathListenerId: string = relayOnly.addPathIdsListener(onPathIds);
relayOnly.addClientIdsListener(null, onClientIds);
relayOnly.addClientIdsListener('petShop', (_, pathId, clientId) =>
  console.log(pathId, clientId),
);
const chained: WsServer = relayOnly.delListener(pathListenerId);

const stats: WsServerStats = chained.getStats();
const counts: [number, number] = [stats.paths, stats.clients];
const pathIds: string[] = relayOnly.getPathIds();
const clientIds: string[] = relayOnly.getClientIds('petShop');
const same: WebSocketServer = relayOnly.getWebSocketServer();
const destroyed: Promise<void> = relayOnly.destroy();

export {counts, pathIds, clientIds, same, destroyed};
