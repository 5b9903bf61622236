// Run as a child process: a native server that the parent floods with traffic; on 'exit' from
// the parent it calls process.exit(0) at once, with native connections busy relaying.
import {once} from 'node:events';
import {createInterface} from 'node:readline';
import {WebSocketServer} from 'ws';
import {createWsServer} from '../../../index.js';

const webSocketServer = new WebSocketServer({host: '127.0.0.1', port: 0});
await once(webSocketServer, 'listening');
createWsServer(webSocketServer);
console.log(`port ${webSocketServer.address().port}`);

for await (const line of createInterface({input: process.stdin})) {
  if (line === 'exit') {
    process.exit(0);
  }
}
