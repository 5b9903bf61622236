// Run as a child process: two native TinyBase clients and one that stays in JS (it negotiates
// permessage-deflate) sync, then the server is destroyed while all three are still connected. It
// never calls process.exit: it must end by itself.
import {once} from 'node:events';
import {isDeepStrictEqual} from 'node:util';
import {WebSocket, WebSocketServer} from 'ws';
import {createMergeableStore} from 'tinybase';
import {createWsSynchronizer} from 'tinybase/synchronizers/synchronizer-ws-client';
import {createWsServer} from '../../../index.js';

const webSocketServer = new WebSocketServer({
  host: '127.0.0.1',
  port: 0,
  perMessageDeflate: true,
});
await once(webSocketServer, 'listening');
const wsServer = createWsServer(webSocketServer);
const url = `ws://127.0.0.1:${webSocketServer.address().port}/exit`;

const deflate = [false, false, true];
const stores = deflate.map(() => createMergeableStore());
stores.forEach((store, index) => store.setCell('t', `r${index}`, 'c', index));
const webSockets = deflate.map(
  (perMessageDeflate) => new WebSocket(url, {perMessageDeflate}),
);
const closed = webSockets.map((webSocket) =>
  once(webSocket, 'close').then(([code]) => code),
);
const synchronizers = await Promise.all(
  stores.map((store, index) => createWsSynchronizer(store, webSockets[index])),
);
await Promise.all(
  synchronizers.map((synchronizer) => synchronizer.startSync()),
);

const expected = {t: {r0: {c: 0}, r1: {c: 1}, r2: {c: 2}}};
const converged = () =>
  stores.every((store) =>
    isDeepStrictEqual(JSON.parse(JSON.stringify(store.getTables())), expected),
  );
const deadline = Date.now() + 20_000;
while (!converged() && Date.now() < deadline) {
  await new Promise((resolve) => setTimeout(resolve, 5));
}
console.log(converged() ? 'converged' : 'not converged');
console.log(
  `extensions ${webSockets.map((webSocket) => webSocket.extensions || '-').join(' ')}`,
);

await wsServer.destroy();
console.log(`closed ${(await Promise.all(closed)).join(' ')}`);
await Promise.all(synchronizers.map((synchronizer) => synchronizer.destroy()));
