// TinyBase's schema-aware declarations of the same API, for stores typed with
// TablesSchema and ValuesSchema.
export type {
  ClientIdsListener,
  PathIdsListener,
  WsServer,
  WsServerStats,
} from 'tinybase/synchronizers/synchronizer-ws-server/with-schemas';
export {createWsServer} from 'tinybase/synchronizers/synchronizer-ws-server/with-schemas';
