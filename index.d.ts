// The API is TinyBase's own, so its declarations are re-used rather than
// restated: whatever TinyBase version is installed, the types match it.
export type {
  ClientIdsListener,
  PathIdsListener,
  WsServer,
  WsServerStats,
} from 'tinybase/synchronizers/synchronizer-ws-server';
export {createWsServer} from 'tinybase/synchronizers/synchronizer-ws-server';
