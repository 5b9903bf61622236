// TinyBase's schema-aware declarations of the same API, for stores typed with
// TablesSchema and ValuesSchema.
import type {createWsServer as createTinyBaseWsServer} from 'tinybase/synchronizers/synchronizer-ws-server/with-schemas';
import type {WithNativeOptions} from '../index.js';

export type {
  Access,
  AuthorizeRequest,
  ConnectionPlane,
  KeptInJsReason,
  ListenAddress,
  ListenOptions,
  MetricFamily,
  MetricsOptions,
  NativeOptions,
  PlaneStats,
} from '../index.js';
export {
  closeClients,
  getConnectionPlane,
  getListenAddress,
  getMetrics,
  getPlaneStats,
  registerMetrics,
} from '../index.js';
export type {
  ClientIdsListener,
  PathIdsListener,
  WsServer,
  WsServerStats,
} from 'tinybase/synchronizers/synchronizer-ws-server/with-schemas';

/**
 * TinyBase's createWsServer, and the same with this package's options as a
 * sixth argument.
 */
export declare const createWsServer: WithNativeOptions<
  typeof createTinyBaseWsServer
>;
