// Run as a child process: two rounds of a native server in a worker thread with TinyBase clients
// in this (main) thread. Round one terminates the worker under its open, busy connections; round two,
// in a fresh worker loading the addon again, destroys the server from inside. Never calls
// process.exit: it must end by itself. Prints what it saw, one line per step.
import {once} from 'node:events';
import {isDeepStrictEqual} from 'node:util';
import {Worker} from 'node:worker_threads';
import {WebSocket} from 'ws';
import {createMergeableStore} from 'tinybase';
import {createWsSynchronizer} from 'tinybase/synchronizers/synchronizer-ws-client';

const nextMessage = (worker, key) =>
  new Promise((resolve, reject) => {
    const onMessage = (message) => {
      if (key in message) {
        worker.off('message', onMessage);
        worker.off('error', reject);
        resolve(message[key]);
      }
    };
    worker.on('message', onMessage);
    worker.once('error', reject);
  });

const converge = async (stores, expected) => {
  const deadline = Date.now() + 20_000;
  const converged = () =>
    stores.every((store) =>
      isDeepStrictEqual(
        JSON.parse(JSON.stringify(store.getValues())),
        expected,
      ),
    );
  while (!converged() && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return converged();
};

const round = async (name, end) => {
  const worker = new Worker(new URL('./worker-server.js', import.meta.url));
  const exited = once(worker, 'exit').then(([code]) => code);
  const port = await nextMessage(worker, 'port');
  const url = `ws://127.0.0.1:${port}/${name}`;
  const stores = [createMergeableStore(), createMergeableStore()];
  const webSockets = stores.map(
    () => new WebSocket(url, {perMessageDeflate: false}),
  );
  const closed = webSockets.map((webSocket) =>
    once(webSocket, 'close').then(([code]) => code),
  );
  const synchronizers = await Promise.all(
    stores.map((store, index) =>
      createWsSynchronizer(store, webSockets[index]),
    ),
  );
  await Promise.all(
    synchronizers.map((synchronizer) => synchronizer.startSync()),
  );
  stores[0].setValue('from', 0);
  stores[1].setValue('to', 1);
  console.log(
    `${name}: ${(await converge(stores, {from: 0, to: 1})) ? 'converged' : 'not converged'}`,
  );
  worker.postMessage('stats');
  console.log(
    `${name}: stats ${JSON.stringify(await nextMessage(worker, 'stats'))}`,
  );
  if (end === 'terminate') {
    // Terminated mid-traffic: the plane's threads are busy reporting to a thread that is going.
    let count = 0;
    const pump = setInterval(() => stores[0].setValue('count', count++), 1);
    const deadline = Date.now() + 20_000;
    while ((stores[1].getValue('count') ?? 0) < 20 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    console.log(`${name}: busy ${(stores[1].getValue('count') ?? 0) >= 20}`);
    await worker.terminate();
    clearInterval(pump);
  } else {
    worker.postMessage('destroy');
    await nextMessage(worker, 'destroyed');
  }
  const codes = await Promise.all(closed);
  // A terminated worker may not get to finish the close handshake; either way the client hears.
  console.log(
    `${name}: clients closed ${codes.every((code) => (end === 'terminate' ? [1001, 1006].includes(code) : code === 1005))}`,
  );
  console.log(
    `${name}: worker exit ${end === 'terminate' ? 'terminated' : await exited}`,
  );
  await Promise.all(
    synchronizers.map((synchronizer) => synchronizer.destroy()),
  );
};

await round('first', 'terminate');
await round('second', 'destroy');
