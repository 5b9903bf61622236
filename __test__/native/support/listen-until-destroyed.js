// Run as a child process: a server listening on the native plane keeps the process alive, as a
// listening socket would, and after destroy() nothing is left to.
import {createServer} from 'node:http';
import {WebSocketServer} from 'ws';
import {createWsServer, getListenAddress} from '../../../index.js';

const wsServer = createWsServer(
  new WebSocketServer({server: createServer()}),
  undefined,
  undefined,
  undefined,
  undefined,
  {listen: {port: 0, host: '127.0.0.1'}},
);
// An unreferenced timer fires only while something else keeps the process alive.
setTimeout(() => console.log('still listening'), 200).unref();
wsServer.addClientIdsListener(null, async (_, __, ___, change) => {
  if (change < 0) {
    await wsServer.destroy();
    console.log('destroyed');
  }
});
console.log(`port ${getListenAddress(wsServer).port}`);
