// The per-path server client: the user's persister and TinyBase's own synchronizer over its
// MergeableStore, started and stopped as the native router asks, in TinyBase's order. Unlike
// TinyBase, a path's new incarnation loads only once the previous one has finished saving and
// stopping, and a stopping incarnation saves once more before its persister is destroyed (a
// persister drops the saves still queued behind a slow one when destroyed): a client returning
// to a path always finds what the last clients sent. And a message for the server client waits
// while its persister has a load pending: TinyBase's persister skips the saves asked for while it
// loads and then replaces the store's content with what it loaded, so a change applied meanwhile
// would be lost from both. TinyBase's file persister loads again after some of its own saves (its
// file watcher reads the file as the next save begins), so this happens in ordinary traffic.

import {createCustomSynchronizer} from 'tinybase/synchronizers';

// JSON has no undefined; TinyBase sends this character in its place.
const UNDEFINED = '\uFFFC';

const stringifyWithUndefined = (value) =>
  JSON.stringify(value, (_key, nested) =>
    nested === undefined ? UNDEFINED : nested,
  );

const restoreUndefined = (value) => {
  if (value === UNDEFINED) {
    return undefined;
  }
  if (Array.isArray(value)) {
    return value.map(restoreUndefined);
  }
  if (value !== null && typeof value == 'object') {
    const restored = Object.create(null);
    for (const key of Object.keys(value)) {
      Object.defineProperty(restored, key, {
        configurable: true,
        enumerable: true,
        writable: true,
        value: restoreUndefined(value[key]),
      });
    }
    return restored;
  }
  return value;
};

const noop = () => {};

// A persister's status while it loads.
const LOADING = 1;

const loadsOf = (persister) => persister.getStats?.().loads;

const secondsSince = (start) => (performance.now() - start) / 1000;

// Resolves once every promise has settled; rejects then with the first rejection to happen.
const firstFailure = async (promises) => {
  let failure;
  await Promise.all(
    promises.map((promise) =>
      promise.catch((error) => {
        failure ??= {error};
      }),
    ),
  );
  if (failure) {
    throw failure.error;
  }
};

// Saves what a persister still has to, if it is auto-saving: queued saves would be dropped.
const saveLast = (persister) =>
  persister?.isAutoSaving?.() ? persister.save() : undefined;

export const createServerClients = ({
  native,
  getClientIds,
  apply,
  createPersisterForPath,
  handleError,
  requestTimeoutSeconds,
}) => {
  // path key -> {pathId, starting, stopping, stopRequested, persister, synchronizer, receive,
  // waiting, draining, loaded}: `waiting` holds the messages held back while a load is pending,
  // `draining` hands them over, `loaded` counts the persister's loads known to have finished
  const paths = new Map();
  // pathId -> the stop of its latest incarnation, settled or not
  const lastStops = new Map();

  const configure = async (key, entry, pathId) => {
    const persisterMaybeThen = await createPersisterForPath(pathId);
    if (persisterMaybeThen === undefined) {
      return false;
    }
    const [persister, then] = Array.isArray(persisterMaybeThen)
      ? persisterMaybeThen
      : [persisterMaybeThen, noop];
    entry.persister = persister;
    entry.loaded = loadsOf(persister);
    entry.synchronizer = createCustomSynchronizer(
      persister.getStore(),
      (toClientId, requestId, message, body) =>
        apply(
          native.serverSend(
            key,
            toClientId ?? null,
            stringifyWithUndefined([requestId, message, body]),
          ),
        ),
      (receive) => {
        entry.receive = receive;
      },
      noop,
      requestTimeoutSeconds,
      undefined,
      undefined,
      handleError,
    );
    entry.then = then;
    return true;
  };

  // Calls the persister factory before it returns, as TinyBase does before acknowledging the
  // subscription that created the path.
  const start = (key, pathId) => {
    const entry = {pathId, stopRequested: false, waiting: []};
    const previousStop = lastStops.get(pathId);
    paths.set(key, entry);
    entry.starting = (async () => {
      const starting = performance.now();
      try {
        const hasServerClient = await configure(key, entry, pathId);
        if (hasServerClient) {
          await previousStop?.catch(noop);
        }
        if (entry.stopRequested) {
          return;
        }
        if (hasServerClient) {
          await entry.persister.startAutoLoad();
          await entry.persister.startAutoSave();
          await entry.synchronizer.startSync();
          entry.then(entry.persister.getStore());
          native.persisterStarted(secondsSince(starting));
        }
        if (!entry.stopRequested) {
          apply(native.pathReady(key, hasServerClient));
        }
      } catch (error) {
        // As in TinyBase, every client waiting on the path leaves it, then hears of the failure.
        let waiting = 1;
        if (!entry.stopRequested) {
          waiting = Math.max(1, getClientIds(pathId).length);
          apply(native.pathFailed(key));
        }
        for (let report = 0; report < waiting; report++) {
          handleError(error);
        }
      }
    })();
  };

  // Persister first, then the synchronizer. Resolves once the path is gone; rejects with the
  // first error either threw, for the caller to report or to fail destroy() with.
  const stop = (key) => {
    const entry = paths.get(key);
    if (entry === undefined) {
      return Promise.resolve();
    }
    if (!entry.stopRequested) {
      entry.stopRequested = true;
      entry.stopping = (async () => {
        await entry.starting;
        // What the server client was handed is applied before the last save.
        await entry.draining;
        const stopping = performance.now();
        let failed = false;
        let firstError;
        for (const destroy of [
          () => saveLast(entry.persister),
          () => entry.persister?.destroy(),
          () => entry.synchronizer?.destroy(),
        ]) {
          try {
            await destroy();
          } catch (error) {
            if (!failed) {
              failed = true;
              firstError = error;
            }
          }
        }
        if (entry.persister !== undefined) {
          native.persisterStopped(secondsSince(stopping));
        }
        paths.delete(key);
        if (lastStops.get(entry.pathId) === entry.stopping) {
          lastStops.delete(entry.pathId);
        }
        apply(native.pathStopped(key));
        if (failed) {
          throw firstError;
        }
      })();
      lastStops.set(entry.pathId, entry.stopping);
    }
    return entry.stopping;
  };

  // The hub hands a path's server client no more diffs until it reports those it has settled:
  // applied, and saved by the saves they scheduled on the path's persister. Meanwhile the path's
  // diffs wait in the hub, merged where they can be, instead of queueing a save each here when
  // the persister is slower than the clients. The synchronizer's own schedule is not waited for:
  // its loads can wait on a client's answer.
  const settling = new Map();
  const settle = async (key) => {
    try {
      for (let entry; (entry = paths.get(key)) && settling.get(key);) {
        settling.set(key, false);
        await entry.draining;
        // An action scheduled now runs after everything scheduled before it. A persister that
        // is not TinyBase's own may have no schedule: it settles at once.
        if (
          !entry.stopRequested &&
          typeof entry.persister?.schedule == 'function'
        ) {
          await entry.persister.schedule(noop);
        }
      }
    } catch (error) {
      // A path stopping meanwhile takes its persister's schedule with it.
      if (paths.get(key)?.stopRequested === false) {
        handleError(error);
      }
    } finally {
      settling.delete(key);
      apply(native.serverSettled(key));
    }
  };

  // A closed multiplexed socket's channels: every one stops, and the first error among them is
  // the one that rejects, once all have settled.
  const stopTogether = (keys) => firstFailure(keys.map(stop));

  const deliver = (entry, payload) => {
    const separator = payload.indexOf('\n');
    try {
      const [requestId, message, body] = restoreUndefined(
        JSON.parse(payload.slice(separator + 1)),
      );
      entry.receive(payload.slice(0, separator), requestId, message, body);
    } catch (error) {
      handleError(error);
    }
  };

  // True if no load of the persister is pending: a change applied now has its save scheduled
  // ahead of any later load, which then reads it back. A persister without a schedule or
  // status (not TinyBase's own) is taken as it comes.
  const quiet = ({persister, loaded}) =>
    typeof persister?.schedule != 'function' ||
    (persister.getStatus?.() != LOADING && loadsOf(persister) === loaded);

  // Hands over what waited, in order, each once every load asked for before it has finished.
  // Entered with something waiting while a load is pending, so it never ends synchronously.
  const drain = async (entry) => {
    const {persister, waiting} = entry;
    try {
      while (waiting.length > 0) {
        const loads = loadsOf(persister);
        await persister.schedule(noop);
        entry.loaded = loads;
        // A load's status goes back to idle only after its turn in the schedule has ended.
        await new Promise(setImmediate);
        while (waiting.length > 0 && quiet(entry)) {
          deliver(entry, waiting.shift());
        }
      }
    } catch (error) {
      // Only a destroyed persister has no schedule left.
      waiting.length = 0;
      if (!entry.stopRequested) {
        handleError(error);
      }
    } finally {
      entry.draining = undefined;
    }
  };

  const receive = (key, payload) => {
    const idle = !settling.has(key);
    settling.set(key, true);
    if (idle) {
      queueMicrotask(() => settle(key));
    }
    const entry = paths.get(key);
    if (entry?.receive === undefined) {
      return;
    }
    if (entry.waiting.length == 0 && quiet(entry)) {
      deliver(entry, payload);
      return;
    }
    entry.waiting.push(payload);
    entry.draining ??= drain(entry);
  };

  // Resolves once every path asked to stop has stopped, including those asked meanwhile.
  const settled = async () => {
    for (
      let stopping;
      (stopping = [...paths.values()].filter((entry) => entry.stopRequested))
        .length > 0;
    ) {
      await Promise.allSettled(stopping.map((entry) => entry.stopping));
    }
  };

  return {start, stop, stopTogether, receive, settled};
};
