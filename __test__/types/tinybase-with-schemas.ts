// The schema-aware form, written against TinyBase's with-schemas module;
// native-with-schemas.ts is this file with only the import specifier changed.
import {WebSocketServer} from 'ws';
import {createMergeableStore} from 'tinybase/with-schemas';
import {
  createFilePersister,
  type FilePersister,
} from 'tinybase/persisters/persister-file/with-schemas';
import {
  createWsServer,
  type ClientIdsListener,
  type PathIdsListener,
  type WsServer,
  type WsServerStats,
} from 'tinybase/synchronizers/synchronizer-ws-server/with-schemas';

const tablesSchema = {pets: {species: {type: 'string'}}} as const;
const valuesSchema = {pathId: {type: 'string'}} as const;
type Schemas = [typeof tablesSchema, typeof valuesSchema];

const createStore = () =>
  createMergeableStore().setSchema(tablesSchema, valuesSchema);

const server: WsServer = createWsServer<Schemas, FilePersister<Schemas>>(
  new WebSocketServer({port: 0}),
  (pathId) => [
    createFilePersister(createStore(), `${pathId}.json`),
    (store) => {
      store.setValue('pathId', pathId);
      store.setCell('pets', 'fido', 'species', 'dog');
    },
  ],
  (error) => console.error(error),
  1,
);

createWsServer<Schemas, FilePersister<Schemas>>(
  new WebSocketServer({port: 0}),
  async (pathId) => createFilePersister(createStore(), `${pathId}.json`),
);

const onPathIds: PathIdsListener = (_, pathId, addedOrRemoved) =>
  console.log(pathId, addedOrRemoved);
const onClientIds: ClientIdsListener = (_, pathId, clientId) =>
  console.log(pathId, clientId);
server.delListener(server.addPathIdsListener(onPathIds));
server.addClientIdsListener(null, onClientIds);
const stats: WsServerStats = server.getStats();
const destroyed: Promise<void> = server.destroy();

export {stats, destroyed};
