// Path and client id listeners with TinyBase's id allocation and calling order, so listener ids
// and the sequence of calls match `createWsServer` exactly.

const MAX_POOLED_IDS = 1000;
const INTEGER = /^\d+$/;

export const createListeners = (getThing, handleError) => {
  const pool = [];
  let nextId = 0;
  // id -> [listener, the set it is in]
  const all = new Map();
  const pathIdListeners = new Set();
  // pathId (null for every path) -> Set of ids
  const clientIdListeners = new Map();

  const add = (listener, set) => {
    const id = pool.shift() ?? String(nextId++);
    all.set(id, [listener, set]);
    set.add(id);
    return id;
  };

  const addPathIdsListener = (listener) => add(listener, pathIdListeners);

  const addClientIdsListener = (pathId, listener) => {
    let set = clientIdListeners.get(pathId);
    if (set === undefined) {
      set = new Set();
      clientIdListeners.set(pathId, set);
    }
    return add(listener, set);
  };

  const delListener = (id) => {
    const entry = all.get(id);
    if (entry !== undefined) {
      const [, set] = entry;
      set.delete(id);
      for (const [pathId, pathSet] of clientIdListeners) {
        if (pathSet === set && set.size == 0) {
          clientIdListeners.delete(pathId);
        }
      }
      all.delete(id);
      if (INTEGER.test(id) && pool.length < MAX_POOLED_IDS) {
        pool.push(id);
      }
    }
  };

  // Every listener runs even if one throws; the first error is the one reported, as in TinyBase.
  const call = (sets, args) => {
    let failed = false;
    let firstError;
    for (const set of sets) {
      for (const id of set ?? []) {
        try {
          all.get(id)?.[0](getThing(), ...args);
        } catch (error) {
          if (!failed) {
            failed = true;
            firstError = error;
          }
        }
      }
    }
    if (failed) {
      handleError(firstError);
    }
  };

  const callPathIdsListeners = (pathId, change) =>
    call([pathIdListeners], [pathId, change]);

  // Listeners on the specific path run before the wildcard (null) ones.
  const callClientIdsListeners = (pathId, clientId, change) =>
    call(
      [clientIdListeners.get(pathId), clientIdListeners.get(null)],
      [pathId, clientId, change],
    );

  return {
    addPathIdsListener,
    addClientIdsListener,
    delListener,
    callPathIdsListeners,
    callClientIdsListeners,
  };
};
