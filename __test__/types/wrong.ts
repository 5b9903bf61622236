// Deliberate misuses of this package's types. tsc must reject exactly the
// lines marked `// wrong`: if the declarations degraded to `any`, or lost a
// parameter, these would start to compile.
import {WebSocketServer} from 'ws';
import {createMergeableStore} from 'tinybase';
import {createFilePersister} from 'tinybase/persisters/persister-file';
import {
  closeClients,
  createWsServer,
  getListenAddress,
  getMetrics,
  registerMetrics,
} from 'tinybase-ws-server-native';
import {createWsServerSimple} from 'tinybase-ws-server-native/simple';
import {createWsServer as createWsServerWithSchemas} from 'tinybase-ws-server-native/with-schemas';
import {createMergeableStore as createSchematizedStore} from 'tinybase/with-schemas';
import {
  createFilePersister as createSchematizedFilePersister,
  type FilePersister,
} from 'tinybase/persisters/persister-file/with-schemas';

const webSocketServer = new WebSocketServer({port: 0});

createWsServer(); // wrong
createWsServer({port: 8047}); // wrong
createWsServer(webSocketServer, (pathId: number) => undefined); // wrong
createWsServer(webSocketServer, () => createMergeableStore()); // wrong
createWsServer(webSocketServer, undefined, undefined, '1'); // wrong
const textSeconds = {heartbeatSeconds: '30'};
createWsServer(webSocketServer, undefined, undefined, 1, 4096, textSeconds); // wrong
createWsServer(webSocketServer, undefined, undefined, 1, 4096, {heartbeat: 30}); // wrong
const textKeep = {keepPathSeconds: '5'};
createWsServer(webSocketServer, undefined, undefined, 1, 4096, textKeep); // wrong
const textUpgrade = {nativeUpgrade: 'yes'};
createWsServer(webSocketServer, undefined, undefined, 1, 4096, textUpgrade); // wrong
const noPort = {listen: {host: '::'}};
createWsServer(webSocketServer, undefined, undefined, 1, 4096, noPort); // wrong
createWsServer(webSocketServer, undefined, undefined, 1, 4096, {}, 0); // wrong
const trueAccess = {authorize: () => true};
createWsServer(webSocketServer, undefined, undefined, 1, 4096, trueAccess); // wrong
const textLimit = {maxClientsPerPath: '9'};
createWsServer(webSocketServer, undefined, undefined, 1, 4096, textLimit); // wrong

const server = createWsServer(webSocketServer, (pathId) =>
  createFilePersister(createMergeableStore(), pathId),
);
server.addClientIdsListener(undefined, () => {}); // wrong
server.addPathIdsListener((_, pathId: number) => {}); // wrong
const paths: string = server.getStats().paths; // wrong
const destroyed: void = server.destroy(); // wrong

const valuesSchema = {pathId: {type: 'string'}} as const;
type Schemas = [{}, typeof valuesSchema];
createWsServerWithSchemas<Schemas, FilePersister<Schemas>>(
  webSocketServer,
  (pathId) => [
    createSchematizedFilePersister(
      createSchematizedStore().setValuesSchema(valuesSchema),
      pathId,
    ),
    (store) => store.setValue('unknown', pathId), // wrong
  ],
);

getMetrics(webSocketServer); // wrong
closeClients(webSocketServer, 1001); // wrong
getListenAddress(webSocketServer); // wrong
registerMetrics(server, {}); // wrong
getMetrics(server, {prefix: 1}); // wrong

createWsServerSimple(); // wrong
createWsServerSimple(webSocketServer, {heartbeatSeconds: 'often'}); // wrong
createWsServerSimple(webSocketServer).getPathIds(); // wrong

export {paths, destroyed};
