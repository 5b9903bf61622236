// TinyBase's createWsServerSimple API, written against TinyBase's own module.
// native-simple.ts is this file with only the import specifier changed, so
// both must type-check the same way.
import {WebSocketServer} from 'ws';
import {
  createWsServerSimple,
  type WsServerSimple,
} from 'tinybase-ws-server-native/simple';

const webSocketServer = new WebSocketServer({port: 0});
const server: WsServerSimple = createWsServerSimple(webSocketServer);
const same: WebSocketServer = server.getWebSocketServer();
const destroyed: Promise<void> = server.destroy();

export {same, destroyed};
