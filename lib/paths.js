// Paths and their clients as the user's listeners have been told of them. The API's getters read
// this, not the native router, so a listener always sees the server as of its own change, as on
// TinyBase's single thread, even while native sockets come and go on other threads.

export const createPaths = () => {
  // pathId -> Set of clientIds, both in the order they appeared
  const paths = new Map();

  const changePath = (pathId, change) => {
    if (change > 0) {
      paths.set(pathId, paths.get(pathId) ?? new Set());
    } else {
      paths.delete(pathId);
    }
  };

  // A path stays while it tears down, without clients, until its own change removes it.
  const changeClient = (pathId, clientId, change) => {
    if (change > 0) {
      let clients = paths.get(pathId);
      if (clients === undefined) {
        clients = new Set();
        paths.set(pathId, clients);
      }
      clients.add(clientId);
    } else {
      paths.get(pathId)?.delete(clientId);
    }
  };

  const getPathIds = () => [...paths.keys()];

  const getClientIds = (pathId) => [...(paths.get(pathId) ?? [])];

  const getStats = () => {
    let clients = 0;
    for (const pathClients of paths.values()) {
      clients += pathClients.size;
    }
    return {paths: paths.size, clients};
  };

  return {changePath, changeClient, getPathIds, getClientIds, getStats};
};
