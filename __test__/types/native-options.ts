// This package's own sixth argument, with TinyBase's five before it, in both
// flavours of the API.
import {createServer} from 'node:http';
import {WebSocketServer} from 'ws';
import {createMergeableStore} from 'tinybase';
import {createFilePersister} from 'tinybase/persisters/persister-file';
import {Registry} from 'prom-client';
import {
  closeClients,
  createWsServer,
  createWsServerSimple,
  getConnectionPlane,
  getListenAddress,
  getMetrics,
  getPlaneStats,
  registerMetrics,
  type Access,
  type ConnectionPlane,
  type KeptInJsReason,
  type ListenAddress,
  type MetricFamily,
  type NativeOptions,
  type PlaneStats,
  type WsServer,
  type WsServerSimple,
} from 'tinybase-ws-server-native';
import {createWsServerSimple as createSimpleFromSubpath} from 'tinybase-ws-server-native/simple';
import {
  createWsServer as createWsServerWithSchemas,
  getMetrics as getMetricsWithSchemas,
} from 'tinybase-ws-server-native/with-schemas';

const webSocketServer = new WebSocketServer({port: 0});

const options: NativeOptions = {
  heartbeatSeconds: 10,
  heartbeatMisses: 3,
  keepPathSeconds: 30,
  nativeUpgrade: true,
};

const withOptions: WsServer = createWsServer(
  webSocketServer,
  (pathId) => createFilePersister(createMergeableStore(), `${pathId}.json`),
  (error) => console.error(error),
  1,
  undefined,
  options,
);

createWsServer(webSocketServer, undefined, undefined, undefined, undefined, {
  heartbeatSeconds: 0,
});

const listening = createWsServer(
  new WebSocketServer({server: createServer()}),
  undefined,
  undefined,
  undefined,
  undefined,
  {listen: {port: 8047, host: '127.0.0.1'}},
);
const address: ListenAddress | undefined = getListenAddress(listening);
const port: number | undefined = address?.port;

createWsServer(webSocketServer, undefined, undefined, undefined, undefined, {
  cluster: {redis: 'redis://127.0.0.1:6379', prefix: 'app'},
});

// Access control: a hook answering at once or later, and the limits.
const readOnlyUnlessAdmin = ({
  request,
  pathId,
  clientId,
}: {
  request: {url?: string};
  pathId: string;
  clientId: string;
}): Access =>
  request.url?.includes('admin')
    ? 'write'
    : pathId && clientId
      ? 'read'
      : false;
createWsServer(webSocketServer, undefined, undefined, 1, undefined, {
  authorize: readOnlyUnlessAdmin,
  maxClientsPerPath: 100,
  maxMessagesPerSecond: 50,
});
createWsServer(webSocketServer, undefined, undefined, 1, undefined, {
  authorize: async ({request}) =>
    request.headers.authorization ? 'write' : false,
});

const withSchemas = createWsServerWithSchemas(
  webSocketServer,
  undefined,
  undefined,
  undefined,
  undefined,
  {heartbeatMisses: 1},
);

// Which plane connections use, per server or for the process, and per connection.
const stats: PlaneStats | undefined = getPlaneStats(withOptions);
const nativeOpen: number | undefined = getPlaneStats()?.native.open;
const keptForTls: number | undefined = stats?.js.byReason.tls;
webSocketServer.on('connection', (webSocket) => {
  const plane: ConnectionPlane | undefined = getConnectionPlane(webSocket);
  const reason: KeptInJsReason | undefined =
    plane?.plane == 'js' ? plane.reason : undefined;
  console.log(plane, reason);
});

const families: MetricFamily[] = getMetrics(withOptions, {prefix: 'app_'});
const unregister: () => void = registerMetrics(withOptions, new Registry());
getMetricsWithSchemas(withSchemas);

// The simple server takes the same options second, and is watched the same way.
const simple: WsServerSimple = createWsServerSimple(webSocketServer, {
  heartbeatSeconds: 5,
  maxClientsPerPath: 10,
});
createSimpleFromSubpath(webSocketServer);
getPlaneStats(simple);
getMetrics(simple);

// Every client, also those whose upgrade the native plane answered.
const closing: Promise<void> = closeClients(withOptions, 1001, 'restarting');
closeClients(simple);

export {closing, withOptions, nativeOpen, keptForTls, families, unregister};
