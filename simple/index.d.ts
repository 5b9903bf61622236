// The package's createWsServerSimple on its own subpath, mirroring TinyBase's
// `synchronizers/synchronizer-ws-server-simple`.
export type {NativeOptions, WsServerSimple} from '../index.js';
export {createWsServerSimple} from '../index.js';
