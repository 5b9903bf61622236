// The soak's server process: this package's createWsServer on loopback, with paths named
// 'persisted-*' saved by TinyBase's file persister into a temp directory and every other path
// unpersisted. run.js drives it over IPC; its resident memory and fds are read from /proc by
// run.js, from outside, so nothing here measures itself.
//
// argv: the data directory. Run with --expose-gc, so run.js can ask for a collection before it
// samples memory (a sample should show what is still referenced, not what V8 has yet to free).

import {once} from 'node:events';
import {join} from 'node:path';
import {WebSocketServer} from 'ws';
import {createMergeableStore} from 'tinybase';
import {createFilePersister} from 'tinybase/persisters/persister-file';
import {canonical} from './canonical.js';

const [dir] = process.argv.slice(2);
// This package unless told otherwise: SOAK_SERVER_MODULE can name another implementation of the
// same API (TinyBase's own 'tinybase/synchronizers/synchronizer-ws-server', or a build elsewhere)
// to run the same soak against it.
const {createWsServer} = await import(
  process.env.SOAK_SERVER_MODULE ?? '../index.js'
);

// The stores of the persisted paths that are running, for the final comparison with clients.
const stores = new Map();
// onIgnoredError, by kind: the tinybase:N code (with its details), else the error's name.
const errors = {};
const firstOtherErrors = [];

const webSocketServer = new WebSocketServer({host: '127.0.0.1', port: 0});
await once(webSocketServer, 'listening');
// SOAK_NATIVE_UPGRADE=1: the native plane answers the upgrades too (this package's nativeUpgrade).
const nativeOptions = process.env.SOAK_NATIVE_UPGRADE
  ? {nativeUpgrade: true}
  : undefined;
const wsServer = createWsServer(
  webSocketServer,
  (pathId) => {
    if (!pathId.startsWith('persisted-')) {
      return undefined;
    }
    const store = createMergeableStore();
    stores.set(pathId, store);
    return createFilePersister(store, join(dir, `${pathId}.json`));
  },
  (error) => {
    const message = String(error?.message ?? error);
    const kind = message.startsWith('tinybase:3:')
      ? 'tinybase:3'
      : message.startsWith('tinybase:')
        ? message
        : (error?.name ?? 'Error');
    errors[kind] = (errors[kind] ?? 0) + 1;
    if (
      !message.startsWith('tinybase:') &&
      !firstOtherErrors.includes(message) &&
      firstOtherErrors.length < 5
    ) {
      firstOtherErrors.push(message);
    }
  },
  undefined,
  undefined,
  nativeOptions,
);
wsServer.addPathIdsListener((_, pathId, change) => {
  if (change == -1) {
    stores.delete(pathId);
  }
});

const handlers = {
  stats: () => ({...wsServer.getStats(), errors, firstOtherErrors}),
  snapshot: () =>
    Object.fromEntries(
      [...stores]
        .filter(([pathId]) => wsServer.getPathIds().includes(pathId))
        .map(([pathId, store]) => [
          pathId,
          JSON.stringify(canonical(store.getTables())),
        ]),
    ),
  gc: () => {
    globalThis.gc?.();
    globalThis.gc?.();
    // Where the memory is, as V8 sees it: what is not accounted for here is native.
    const {heapUsed, external, arrayBuffers} = process.memoryUsage();
    return {
      collected: typeof globalThis.gc == 'function',
      heapUsed,
      external,
      arrayBuffers,
    };
  },
  stop: async () => {
    stopping = true;
    await wsServer.destroy();
    // Nothing is left to keep this process alive: it ends by itself once IPC is let go.
    setImmediate(() => process.disconnect());
    return true;
  },
};

// run.js went away without stopping this server (it failed or was killed): nothing is left to
// report to.
let stopping = false;
process.on('disconnect', () => {
  if (!stopping) {
    process.exit(1);
  }
});

process.on('message', async ({id, type}) => {
  try {
    process.send({id, result: await handlers[type]()});
  } catch (error) {
    process.send({id, error: String(error?.stack ?? error)});
  }
});
process.send({id: 'ready', result: webSocketServer.address().port});
