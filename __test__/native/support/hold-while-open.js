// Run as a child process, and never calls destroy() or process.exit(): open native connections
// must keep it alive as open ws sockets would, and nothing else may once they are gone.
import {once} from 'node:events';
import {WebSocketServer} from 'ws';
import {createWsServer} from '../../../index.js';

const webSocketServer = new WebSocketServer({host: '127.0.0.1', port: 0});
await once(webSocketServer, 'listening');
const wsServer = createWsServer(webSocketServer);
// The stats are read when a listener is called; two leaves reported together both see 0.
let stopped = false;
let gone = false;
wsServer.addClientIdsListener(null, () => {
  const {clients} = wsServer.getStats();
  if (clients == 2 && !stopped) {
    stopped = true;
    // No new connections, and no listening socket left to keep the process alive.
    webSocketServer.close();
    console.log('stopped listening');
  } else if (clients == 0 && stopped && !gone) {
    gone = true;
    console.log('all gone');
  }
});
console.log(`port ${webSocketServer.address().port}`);
