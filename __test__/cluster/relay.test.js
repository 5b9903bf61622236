// One path served by three server processes joined through a Redis of the test's own.

import assert from 'node:assert/strict';
import {execFileSync} from 'node:child_process';
import {mkdtemp, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import test from 'node:test';
import {setTimeout as delay} from 'node:timers/promises';
import {WebSocketServer} from 'ws';
import {createWsServer} from '../../index.js';
import {freePort} from '../../scripts/redis-server.js';
import {
  TEST_TIMEOUT_MS,
  defer,
  openClient,
  plain,
  waitFor,
  waitForEqual,
} from '../support/harness.js';
import {meet, openClients, openRaw, startNode, startRedis} from './support.js';

const options = {timeout: 2 * TEST_TIMEOUT_MS};
const OUTAGE = /cluster: Redis is unreachable/g;

const startCluster = async (t, count, redisOptions) => {
  const redis = await startRedis(t);
  const nodes = [];
  for (let index = 0; index < count; index++) {
    nodes.push(await startNode(t, redis, redisOptions));
  }
  return {redis, nodes};
};

test(
  'a broadcast reaches every client on every node once, in the order sent',
  options,
  async (t) => {
    const {nodes} = await startCluster(t, 3);
    const sender = await openRaw(t, nodes[0].url('p'), 'sender');
    const raws = [
      sender,
      await openRaw(t, nodes[0].url('p'), 'same node'),
      await openRaw(t, nodes[1].url('p'), 'second node'),
      await openRaw(t, nodes[2].url('p'), 'third node'),
    ];
    await meet(raws);
    const count = 200;
    for (let n = 1; n <= count; n++) {
      sender.send('', [n, 1]);
    }
    sender.send('', [0, 2]);
    for (const raw of raws.slice(1)) {
      const id = raw.ids.get('sender');
      await waitFor(
        () => raw.received().some(([, body]) => body[1] === 2),
        `${raw.name} to receive the last broadcast`,
      );
      const expected = Array.from({length: count}, (_, index) => [
        id,
        [index + 1, 1],
      ]);
      assert.deepEqual(raw.received(), [...expected, [id, [0, 2]]], raw.name);
    }
    assert.deepEqual(sender.received(), []);
  },
);

test(
  'a message to one client reaches it on its node, from its sender, and no one else',
  options,
  async (t) => {
    const {nodes} = await startCluster(t, 3);
    const [a, b, c] = [
      await openRaw(t, nodes[0].url('d'), 'a'),
      await openRaw(t, nodes[1].url('d'), 'b'),
      await openRaw(t, nodes[2].url('d'), 'c'),
    ];
    await meet([a, b, c]);
    a.send(a.ids.get('b'), [1, 1]);
    c.send('nobody', [2, 1]);
    b.send(b.ids.get('a'), [3, 1]);
    // Each sender broadcasts last: per sender, what it sent before has arrived by then.
    for (const raw of [a, b, c]) {
      raw.send('', [9, 2]);
    }
    for (const raw of [a, b, c]) {
      await waitFor(
        () => raw.received().filter(([, body]) => body[1] === 2).length == 2,
        `${raw.name} to hear both last broadcasts`,
      );
    }
    const direct = (raw) => raw.received().filter(([, body]) => body[1] === 1);
    assert.deepEqual(direct(a), [[a.ids.get('b'), [3, 1]]]);
    assert.deepEqual(direct(b), [[b.ids.get('a'), [1, 1]]]);
    assert.deepEqual(direct(c), []);
  },
);

test(
  'TinyBase stores on three nodes converge, late joiners included',
  options,
  async (t) => {
    const {redis, nodes} = await startCluster(t, 3);
    const clients = await openClients(t, nodes, 'shared');
    clients.forEach(({store}, index) =>
      store.setCell('pets', `pet${index}`, 'node', Math.floor(index / 2)),
    );
    const expected = {
      pets: Object.fromEntries(
        clients.map((_, index) => [
          `pet${index}`,
          {node: Math.floor(index / 2)},
        ]),
      ),
    };
    for (const [index, {store}] of clients.entries()) {
      await waitForEqual(() => store.getTables(), expected, `store ${index}`);
    }
    // Alone on its node, a late joiner can only get the content by asking clients elsewhere.
    const lonely = await startNode(t, redis);
    const joiner = await openClient(t, lonely.url('shared'));
    await waitForEqual(() => joiner.store.getTables(), expected, 'late joiner');
  },
);

test(
  'Redis stopped mid-traffic and restarted: every store converges, no client is closed',
  options,
  async (t) => {
    const {redis, nodes} = await startCluster(t, 3);
    const clients = await openClients(t, nodes, 'busy');
    let writes = 0;
    let writing = true;
    const writer = (async () => {
      while (writing) {
        const [client, index] = [clients[writes % clients.length], writes];
        client.store.setCell('log', `w${index}`, 'by', writes % clients.length);
        writes++;
        await delay(20);
      }
    })();
    await waitFor(() => writes >= 30, 'writes before the outage');
    await redis.stop();
    const duringOutage = writes;
    await waitFor(
      () => writes >= duringOutage + 60,
      'writes during the outage',
    );
    await redis.start();
    await waitFor(
      () => writes >= duringOutage + 120,
      'writes after the outage',
    );
    writing = false;
    await writer;
    const expected = plain(clients[0].store.getTables());
    assert.equal(Object.keys(expected.log ?? {}).length > 0, true);
    const all = Object.fromEntries(
      Array.from({length: writes}, (_, index) => [
        `w${index}`,
        {by: index % clients.length},
      ]),
    );
    for (const [index, {store}] of clients.entries()) {
      await waitForEqual(() => store.getTables(), {log: all}, `store ${index}`);
    }
    for (const {closed} of clients) {
      assert.equal(
        await Promise.race([closed.then(() => 'closed'), 'open']),
        'open',
      );
    }
    for (const node of nodes) {
      assert.equal(
        node.output.stderr.match(OUTAGE)?.length,
        1,
        node.output.stderr,
      );
    }
  },
);

test(
  'two clusters with different prefixes on one Redis never see each other',
  options,
  async (t) => {
    const redis = await startRedis(t);
    const [a1, a2, b1, b2] = [
      await startNode(t, redis, {prefix: 'alpha'}),
      await startNode(t, redis, {prefix: 'alpha'}),
      await startNode(t, redis, {prefix: 'beta'}),
      await startNode(t, redis, {prefix: 'beta'}),
    ];
    const alpha = [
      await openRaw(t, a1.url('p'), 'alpha 1'),
      await openRaw(t, a2.url('p'), 'alpha 2'),
    ];
    const beta = [
      await openRaw(t, b1.url('p'), 'beta 1'),
      await openRaw(t, b2.url('p'), 'beta 2'),
    ];
    await meet(alpha);
    await meet(beta);
    // Redis hands a published message to every subscriber before it runs the next command:
    // what crossed over would arrive before anything published after it went through.
    const bodies = (raw) => raw.received().map(([, body]) => body);
    const heard = (raw, n) =>
      waitFor(() => bodies(raw).some(([m]) => m === n), `${raw.name} ${n}`);
    beta[0].send('', [1, 1]);
    await heard(beta[1], 1);
    alpha[0].send('', [2, 1]);
    await heard(alpha[1], 2);
    beta[0].send('', [3, 2]);
    alpha[0].send('', [4, 2]);
    await waitFor(
      () => alpha[1].received().some(([, body]) => body[1] === 2),
      'alpha marker',
    );
    await waitFor(
      () => beta[1].received().some(([, body]) => body[1] === 2),
      'beta marker',
    );
    assert.deepEqual(bodies(alpha[1]), [
      [2, 1],
      [4, 2],
    ]);
    assert.deepEqual(bodies(beta[1]), [
      [1, 1],
      [3, 2],
    ]);
  },
);

test(
  'nodes meet in a Redis that speaks TLS (rediss://)',
  options,
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'tinybase-cluster-tls-'));
    defer(t, () => rm(dir, {recursive: true, force: true}));
    const file = (name) => join(dir, name);
    // A CA of its own, trusted by the nodes through SSL_CERT_FILE, and Redis's certificate
    // signed by it for the name the nodes use.
    const openssl = (...args) =>
      execFileSync('openssl', args, {stdio: 'ignore'});
    const newKey = ['-newkey', 'rsa:2048', '-nodes'];
    openssl(
      'req',
      '-x509',
      ...newKey,
      '-days',
      '1',
      '-subj',
      '/CN=test CA',
      '-keyout',
      file('ca.key'),
      '-out',
      file('ca.pem'),
    );
    openssl(
      'req',
      ...newKey,
      '-subj',
      '/CN=localhost',
      '-keyout',
      file('key.pem'),
      '-out',
      file('redis.csr'),
    );
    await writeFile(file('san.ext'), 'subjectAltName=DNS:localhost\n');
    openssl(
      'x509',
      '-req',
      '-in',
      file('redis.csr'),
      '-CA',
      file('ca.pem'),
      '-CAkey',
      file('ca.key'),
      '-CAcreateserial',
      '-days',
      '1',
      '-extfile',
      file('san.ext'),
      '-out',
      file('cert.pem'),
    );
    const [cert, key] = [file('cert.pem'), file('key.pem')];
    const tlsPort = await freePort();
    await startRedis(t, [
      '--tls-port',
      String(tlsPort),
      '--tls-cert-file',
      cert,
      '--tls-key-file',
      key,
      '--tls-ca-cert-file',
      file('ca.pem'),
      '--tls-auth-clients',
      'no',
    ]);
    const redis = {url: `rediss://localhost:${tlsPort}`};
    const env = {SSL_CERT_FILE: file('ca.pem')};
    const nodes = [
      await startNode(t, redis, {env}),
      await startNode(t, redis, {env}),
    ];
    await meet([
      await openRaw(t, nodes[0].url('tls'), 'first'),
      await openRaw(t, nodes[1].url('tls'), 'second'),
    ]);
    for (const node of nodes) {
      assert.equal(node.output.stderr, '');
    }
  },
);

test('a cluster option that cannot work is refused at once', () => {
  const webSocketServer = new WebSocketServer({noServer: true});
  const create = (cluster) =>
    createWsServer(webSocketServer, undefined, undefined, 1, undefined, {
      cluster,
    });
  assert.throws(() => create({}), TypeError);
  assert.throws(() => create({redis: 'http://127.0.0.1'}), /Redis URL/);
  assert.throws(
    () => create({redis: 'redis://127.0.0.1:1', prefix: 'a:b'}),
    /prefix/,
  );
});
