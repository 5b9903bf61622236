// A clean exit: servers in child processes (and a worker) that must end by themselves once they
// are destroyed or terminated, that must exit cleanly when told to mid-traffic, that stay out of
// each other's way, and a heartbeat that drops a peer whose network vanished. Each fixture in
// fixtures/faults/ is bounded; a child that outlives its bound fails the test and is killed.

import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import {once} from 'node:events';
import {mkdtempSync, readFileSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import test from 'node:test';
import {fileURLToPath} from 'node:url';
import {WebSocket} from 'ws';
import {createMergeableStore} from 'tinybase';
import {
  TEST_TIMEOUT_MS,
  defer,
  openClient,
  plain,
  waitFor,
  waitForEqual,
  withTimeout,
} from './support/harness.js';
import {name as implementation} from './support/implementation.js';

const options = {timeout: TEST_TIMEOUT_MS};
// How long a child may take to end by itself: far beyond what it needs, so only a process that
// would never end fails here.
const EXIT_MS = 40_000;

const tempDir = (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tb-ws-exit-'));
  defer(t, () => rmSync(dir, {recursive: true, force: true}));
  return dir;
};

// Runs a fixture in a child process of its own, with the environment (and so the server under
// test) of this one. The child is killed if the test ends first.
const runFixture = (t, name, args = [], nodeOptions = []) => {
  const path = fileURLToPath(
    new URL(`fixtures/faults/${name}`, import.meta.url),
  );
  // Fixtures keep a permessage-deflate client in JS on purpose: its warning is expected noise here.
  const child = spawn(
    process.execPath,
    ['--disable-warning=TBWSN001', ...nodeOptions, path, ...args],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (data) => (stdout += data));
  child.stderr.setEncoding('utf8').on('data', (data) => (stderr += data));
  // 'close' rather than 'exit', so that everything the child wrote has been read.
  const closed = once(child, 'close');
  defer(t, async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
    }
    await closed;
  });
  return {
    // Resolves with stdout's line `index` once it is complete.
    line: async (index) => {
      await waitFor(
        () => stdout.split('\n').length > index + 1,
        `${name}'s line ${index}`,
      );
      return stdout.split('\n')[index];
    },
    exit: async () => {
      const [code, signal] = await withTimeout(
        closed,
        `${name} to exit by itself`,
        EXIT_MS,
      );
      return {code, signal, stdout, stderr};
    },
  };
};

const portOf = (line) => {
  const [, port] = line.match(/^ready (\d+)$/) ?? [];
  assert.ok(port, `a ready line, not '${line}'`);
  return Number(port);
};

// Clients of `url`: two that decline compression (taken over natively by this server) and one
// that offers it (kept in JS where the server accepts compression). Each writes a row; all three
// converge on every row.
const openMixedClients = async (t, url) => {
  const clients = [
    await openClient(t, url, {
      webSocket: new WebSocket(url, {perMessageDeflate: false}),
    }),
    await openClient(t, url, {
      webSocket: new WebSocket(url, {perMessageDeflate: false}),
    }),
    await openClient(t, url, {webSocket: new WebSocket(url)}),
  ];
  clients.forEach(({store}, index) =>
    store.setCell('t', `r${index}`, 'c', index),
  );
  const expected = {t: {r0: {c: 0}, r1: {c: 1}, r2: {c: 2}}};
  for (const [index, {store}] of clients.entries()) {
    await waitForEqual(() => store.getTables(), expected, `client ${index}`);
  }
  return {clients, expected};
};

// A bare connection that only joins `url`'s path, to set off what the fixture does there.
const trigger = (t, url) => {
  const webSocket = new WebSocket(url, {perMessageDeflate: false});
  webSocket.on('error', () => {});
  defer(t, () => webSocket.terminate());
  return webSocket;
};

test(
  'after destroy() alone, a process with clients still connected exits by itself',
  options,
  async (t) => {
    const dir = tempDir(t);
    const child = runFixture(t, 'exit-destroy.js', [dir]);
    const base = `ws://127.0.0.1:${portOf(await child.line(0))}/`;
    const {clients, expected} = await openMixedClients(t, base + 'p');

    trigger(t, base + 'destroy');
    const {code, signal, stdout, stderr} = await child.exit();
    assert.deepEqual(
      {code, signal, stderr},
      {code: 0, signal: null, stderr: ''},
    );
    const [, extensions, destroyed, end] = stdout.split('\n');
    assert.deepEqual([destroyed, end], ['destroyed', '']);
    // Both planes were in use: compression keeps a connection in JS, its absence lets it go native.
    const negotiated = JSON.parse(extensions);
    assert.ok(negotiated.includes('permessage-deflate'), extensions);
    assert.ok(negotiated.includes(''), extensions);

    for (const [index, {closed}] of clients.entries()) {
      await withTimeout(closed, `client ${index} to be closed`);
    }
    // The persister was destroyed in order, after saving everything it had been sent.
    const saved = createMergeableStore();
    saved.setMergeableContent(
      JSON.parse(readFileSync(join(dir, 'p.json'), 'utf8')),
    );
    assert.deepEqual(plain(saved.getTables()), expected);
  },
);

test(
  'a server in a terminated worker leaves nothing behind and the process exits by itself',
  options,
  async (t) => {
    const child = runFixture(t, 'exit-worker.js');
    const base = `ws://127.0.0.1:${portOf(await child.line(0))}/`;
    const {clients} = await openMixedClients(t, base + 'p');

    trigger(t, base + 'terminate');
    // The worker's end drops every connection it had, native or not.
    for (const [index, {closed}] of clients.entries()) {
      await withTimeout(closed, `client ${index} to be dropped`);
    }
    const {code, signal, stdout, stderr} = await child.exit();
    assert.deepEqual(
      {code, signal, stderr},
      {code: 0, signal: null, stderr: ''},
    );
    const seen = JSON.parse(stdout.split('\n')[1]);
    assert.deepEqual(
      {...seen, threadsWhileRunning: undefined},
      {
        exitCode: 1,
        threadsWhileRunning: undefined,
        threadsGone: true,
        socketsBack: true,
      },
    );
    if (implementation === 'native') {
      // Otherwise threadsGone would hold however the plane behaved.
      assert.ok(
        seen.threadsWhileRunning > 0,
        'the plane threads were found while running',
      );
    }
  },
);

test(
  'two servers in one process are independent, and the process exits by itself',
  options,
  async (t) => {
    const {code, signal, stdout, stderr} = await runFixture(
      t,
      'exit-two-servers.js',
    ).exit();
    assert.deepEqual(
      {code, signal, stderr},
      {code: 0, signal: null, stderr: ''},
    );
    assert.deepEqual(JSON.parse(stdout), {
      firstConverged: true,
      secondConverged: true,
      separate: true,
      bothKnowTheirClients: true,
      firstClientsClosed: true,
      secondStillRelays: true,
      secondUnaffected: true,
    });
  },
);

test(
  'process.exit() in the middle of traffic exits with code 0 and no crash output',
  options,
  async (t) => {
    // A few times over, as each run stops the plane at a different point.
    for (let run = 0; run < 3; run++) {
      const dir = tempDir(t);
      const {code, signal, stdout, stderr} = await runFixture(
        t,
        'exit-during-traffic.js',
        [dir],
      ).exit();
      assert.deepEqual(
        {run, code, signal, stdout, stderr},
        {
          run,
          code: 0,
          signal: null,
          stdout: 'exiting after 500 messages\n',
          stderr: '',
        },
      );
    }
  },
);

test(
  'the heartbeat drops a peer whose network vanished and its path empties',
  {
    ...options,
    skip:
      implementation === 'reference'
        ? "TinyBase's own server has no heartbeat"
        : false,
  },
  async (t) => {
    // Ten misses in a row before giving up: the vanished peer never answers, so it goes all the
    // same, while the live client would have to be starved for two seconds to miss as many.
    const {code, signal, stdout, stderr} = await runFixture(
      t,
      'exit-heartbeat.js',
      ['0.2', '10'],
    ).exit();
    assert.deepEqual(
      {code, signal, stderr},
      {code: 0, signal: null, stderr: ''},
    );
    const seen = JSON.parse(stdout);
    assert.deepEqual(seen, {
      upgraded: true,
      joined: true,
      pathEmptied: true,
      aliveStays: true,
      // What ws reports for a connection that ended without a close frame.
      vanishedCloseCode: 1006,
      vanishedEvents: [
        ['path', 'vanished', 1],
        ['client', 'vanished', seen.key, 1],
        ['client', 'vanished', seen.key, -1],
        ['path', 'vanished', -1],
      ],
      key: seen.key,
      errors: [],
    });
  },
);

// A server runs for months: anything it keeps per connection after the close (a listener
// remover, a map entry) grows without end. Each WebSocket it was given must become unreachable.
test(
  'connections that closed are released while the server keeps running',
  options,
  async (t) => {
    const {code, signal, stdout, stderr} = await runFixture(
      t,
      'exit-release.js',
      [],
      ['--expose-gc'],
    ).exit();
    assert.deepEqual(
      {code, signal, stderr},
      {code: 0, signal: null, stderr: ''},
    );
    assert.deepEqual(JSON.parse(stdout), {connections: 300, alive: 0});
  },
);
