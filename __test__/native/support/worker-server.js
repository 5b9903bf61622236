// A worker thread's whole job: a native server on a free loopback port. It answers 'stats', and
// on 'destroy' destroys the server and lets the thread end by itself.
import {once} from 'node:events';
import {parentPort} from 'node:worker_threads';
import {WebSocketServer} from 'ws';
import {createWsServer} from '../../../index.js';

const webSocketServer = new WebSocketServer({host: '127.0.0.1', port: 0});
await once(webSocketServer, 'listening');
const wsServer = createWsServer(webSocketServer);

const onMessage = async (message) => {
  if (message === 'stats') {
    parentPort.postMessage({stats: wsServer.getStats()});
  } else if (message === 'destroy') {
    await wsServer.destroy();
    parentPort.postMessage({destroyed: true});
    // Nothing else is left to keep the thread alive.
    parentPort.off('message', onMessage);
  }
};
parentPort.on('message', onMessage);
parentPort.postMessage({port: webSocketServer.address().port});
