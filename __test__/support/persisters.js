import {createMergeableStore} from 'tinybase';

// A duck-typed persister with exactly the four members the server uses
// (getStore, startAutoLoad, startAutoSave, destroy), keeping content in a Map
// shared between persisters so a path can be stopped and restarted. Every call
// is appended to `log`, and each step can be delayed or failed through `hooks`
// to observe the order in which the server starts and tears a path down.
export const createMemoryPersister = ({
  pathId,
  storage = new Map(),
  log = [],
  hooks = {},
  store = createMergeableStore(),
}) => {
  let saveListenerId;
  const save = () => storage.set(pathId, store.getMergeableContent());

  // The server's synchronizer subscribes to the store it gets from getStore;
  // handing it a copy whose listener methods log lets a test see when the
  // synchronizer lets go, separately from this persister's own teardown.
  const synchronizerListenerIds = new Set();
  const storeForServer = Object.freeze({
    ...store,
    addDidFinishTransactionListener: (listener) => {
      const listenerId = store.addDidFinishTransactionListener(listener);
      synchronizerListenerIds.add(listenerId);
      log.push(`${pathId}: synchronizer listens`);
      return listenerId;
    },
    delListener: (listenerId) => {
      if (synchronizerListenerIds.delete(listenerId)) {
        log.push(`${pathId}: synchronizer stops listening`);
      }
      store.delListener(listenerId);
      return storeForServer;
    },
  });

  const step = async (name, action) => {
    log.push(`${pathId}: ${name}`);
    await hooks[name]?.();
    action?.();
    log.push(`${pathId}: ${name} done`);
  };

  return {
    getStore: () => storeForServer,
    startAutoLoad: () =>
      step('startAutoLoad', () => {
        if (storage.has(pathId)) {
          store.setMergeableContent(storage.get(pathId));
        }
      }),
    startAutoSave: () =>
      step('startAutoSave', () => {
        save();
        saveListenerId = store.addDidFinishTransactionListener(save);
      }),
    destroy: () =>
      step('destroy', () => {
        if (saveListenerId !== undefined) {
          store.delListener(saveListenerId);
        }
      }),
    store,
  };
};
