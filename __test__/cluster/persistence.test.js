// A persisted path in a cluster: one node at a time runs its persister and server client, which
// the clients of every node keep fed, also across a Redis outage.

import assert from 'node:assert/strict';
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import test from 'node:test';
import {setTimeout as delay} from 'node:timers/promises';
import {isDeepStrictEqual} from 'node:util';
import {createMergeableStore} from 'tinybase';
import {createFilePersister} from 'tinybase/persisters/persister-file';
import {
  TEST_TIMEOUT_MS,
  defer,
  openClient,
  plain,
  waitFor,
  waitForEqual,
  withTimeout,
} from '../support/harness.js';
import {
  openClients,
  openRaw,
  startPersistedNode,
  startRedis,
} from './support.js';

const options = {timeout: 2 * TEST_TIMEOUT_MS};

// What the file holds, read as a fresh server would load it.
const persisted = async (file) => {
  const persister = createFilePersister(createMergeableStore(), file);
  try {
    await persister.load();
    return plain(persister.getStore().getTables());
  } finally {
    await persister.destroy();
  }
};

const waitForPersisted = async (file, expected) => {
  let last;
  try {
    await waitFor(async () => {
      last = await persisted(file);
      return isDeepStrictEqual(last, expected);
    }, 'the persisted content');
  } catch (error) {
    error.message += `; last seen ${JSON.stringify(last)}`;
    throw error;
  }
};

// Three nodes persisting into one directory, two clients of path 'doc' on each, synced.
const startSynced = async (t) => {
  const redis = await startRedis(t);
  const dir = await mkdtemp(join(tmpdir(), 'tinybase-cluster-'));
  defer(t, () => rm(dir, {recursive: true, force: true}));
  const file = join(dir, 'doc.json');
  const nodes = [];
  for (let index = 0; index < 3; index++) {
    nodes.push(await startPersistedNode(t, redis, dir));
  }
  const clients = await openClients(t, nodes, 'doc');
  clients.forEach(({store}, index) =>
    store.setCell('pets', `pet${index}`, 'by', index),
  );
  const first = {
    pets: Object.fromEntries(clients.map((_, i) => [`pet${i}`, {by: i}])),
  };
  for (const [index, {store}] of clients.entries()) {
    await waitForEqual(() => store.getTables(), first, `store ${index}`);
  }
  return {redis, file, nodes, clients, first};
};

test(
  'a persisted path is loaded and saved by one node, and moves when it is killed',
  options,
  async (t) => {
    const {redis, file, nodes, clients, first} = await startSynced(t);
    await waitForPersisted(file, first);

    const stats = await Promise.all(nodes.map((node) => node.stats()));
    const holder = stats.findIndex(({factoryCalls}) => factoryCalls > 0);
    assert.deepEqual(
      stats.map(({factoryCalls}) => factoryCalls).sort(),
      [0, 0, 1],
    );
    assert.ok(stats[holder].saves > 0);
    assert.deepEqual(
      stats.filter((_, index) => index != holder).map(({saves}) => saves),
      [0, 0],
    );

    // The holder dies mid-traffic; the other nodes' clients carry on without reconnecting.
    const survivors = nodes.filter((_, index) => index != holder);
    const writers = clients.filter(
      (_, index) => Math.floor(index / 2) != holder,
    );
    let writes = 0;
    let writing = true;
    const writer = (async () => {
      while (writing) {
        writers[writes % writers.length].store.setCell(
          'log',
          `w${writes}`,
          'n',
          writes,
        );
        writes++;
        await delay(20);
      }
    })();
    await waitFor(() => writes >= 20, 'writes before the kill');
    await nodes[holder].kill();
    const afterKill = writes;
    await waitFor(
      async () =>
        (await Promise.all(survivors.map((node) => node.stats()))).some(
          ({factoryCalls}) => factoryCalls > 0,
        ),
      'another node to take the path over',
    );
    await waitFor(() => writes >= afterKill + 40, 'writes after the takeover');
    writing = false;
    await writer;

    const expected = {
      ...first,
      log: Object.fromEntries(
        Array.from({length: writes}, (_, n) => [`w${n}`, {n}]),
      ),
    };
    for (const [index, {store}] of writers.entries()) {
      await waitForEqual(() => store.getTables(), expected, `writer ${index}`);
    }
    await waitForPersisted(file, expected);
    const after = await Promise.all(survivors.map((node) => node.stats()));
    assert.deepEqual(
      after.map(({factoryCalls}) => factoryCalls).sort(),
      [0, 1],
    );

    // Redis restarts empty, its epoch counter with it: the holder's server client must still be
    // heard on the other node, whose clients have heard a later epoch than Redis now counts from.
    await redis.stop();
    await redis.start();
    const elsewhere =
      survivors[after.findIndex(({factoryCalls}) => !factoryCalls)];
    const asker = await openRaw(t, elsewhere.url('doc'), 'asker');
    // Asked again until answered: the holder takes its lease again within a second or two.
    let request = 0;
    const asking = setInterval(
      () =>
        asker.webSocket.send(`S\n${JSON.stringify([`q${request++}`, 1, ''])}`),
      200,
    );
    defer(t, () => clearInterval(asking));
    await waitFor(
      () =>
        asker.messages.some(
          ({from, message, requestId}) =>
            from == 'S' && message == 0 && requestId?.startsWith('q'),
        ),
      'the server client to answer from the other node',
    );
  },
);

test(
  'the holder keeps a path while another node has clients, and stops it with the last one',
  options,
  async (t) => {
    const {redis, file, nodes, clients, first} = await startSynced(t);
    const stats = await Promise.all(nodes.map((node) => node.stats()));
    const holder = stats.findIndex(({factoryCalls}) => factoryCalls > 0);
    const onNode = (node) => clients.slice(node * 2, node * 2 + 2);
    const close = async (leaving) => {
      for (const {synchronizer, webSocket, closed} of leaving) {
        await synchronizer.destroy();
        webSocket.close();
        await withTimeout(closed, 'a client to close');
      }
    };

    // The holder's own clients leave; the others' keep syncing through its server client.
    await close(onNode(holder));
    const staying = clients.filter(
      (_, index) => Math.floor(index / 2) != holder,
    );
    staying.forEach(({store}, index) =>
      store.setCell('later', `w${index}`, 'n', index),
    );
    const second = {
      ...first,
      later: Object.fromEntries(staying.map((_, n) => [`w${n}`, {n}])),
    };
    for (const [index, {store}] of staying.entries()) {
      await waitForEqual(() => store.getTables(), second, `staying ${index}`);
    }
    await waitForPersisted(file, second);
    // A late client of another node is answered by the same server client, loaded once.
    const late = await openClient(
      t,
      nodes[(holder + 1) % nodes.length].url('doc'),
    );
    await waitForEqual(() => late.store.getTables(), second, 'a late client');
    const kept = await Promise.all(nodes.map((node) => node.stats()));
    assert.deepEqual(
      kept.map(({factoryCalls}) => factoryCalls),
      stats.map(({factoryCalls}) => factoryCalls),
    );
    assert.deepEqual(
      kept.map(({stops}) => stops),
      [0, 0, 0],
    );

    // The last clients of the cluster leave: the holder saves and stops the path, once.
    await close([...staying, late]);
    await waitFor(
      async () => (await nodes[holder].stats()).stops > 0,
      'the holder to stop the path',
    );
    await waitForPersisted(file, second);
    const stopped = await Promise.all(nodes.map((node) => node.stats()));
    assert.deepEqual(
      stopped.map(({factoryCalls, stops}) => [factoryCalls, stops]),
      stats.map(({factoryCalls}) => [factoryCalls, factoryCalls]),
    );
  },
);

test(
  'a change made on another node while Redis is away reaches the persisted content',
  options,
  async (t) => {
    const redis = await startRedis(t);
    const dir = await mkdtemp(join(tmpdir(), 'tinybase-cluster-'));
    defer(t, () => rm(dir, {recursive: true, force: true}));
    const file = join(dir, 'doc.json');
    const nodes = [
      await startPersistedNode(t, redis, dir),
      await startPersistedNode(t, redis, dir),
    ];
    const clients = await openClients(t, nodes, 'doc', 1);
    clients[0].store.setCell('pets', 'pet0', 'by', 0);
    const first = {pets: {pet0: {by: 0}}};
    for (const [index, {store}] of clients.entries()) {
      await waitForEqual(() => store.getTables(), first, `store ${index}`);
    }
    await waitForPersisted(file, first);
    const stats = await Promise.all(nodes.map((node) => node.stats()));
    const elsewhere = stats.findIndex(({factoryCalls}) => factoryCalls == 0);

    // What the other node's client sends meanwhile reaches neither Redis nor the server client.
    await redis.stop();
    clients[elsewhere].store.setCell('pets', 'pet1', 'by', 1);
    await redis.start();

    // The resync after the outage heals the clients, and the server client with them.
    const second = {pets: {pet0: {by: 0}, pet1: {by: 1}}};
    for (const [index, {store}] of clients.entries()) {
      await waitForEqual(() => store.getTables(), second, `store ${index}`);
    }
    await waitForPersisted(file, second);
    const after = await Promise.all(nodes.map((node) => node.stats()));
    assert.deepEqual(
      after.map(({factoryCalls}) => factoryCalls),
      stats.map(({factoryCalls}) => factoryCalls),
    );
  },
);
