// The native server inside a Node process: user callbacks reached from Rust threads (trap 11),
// what keeps the process alive and how it ends (traps 11 and 12), worker threads, and two servers
// side by side. Whatever must end a process runs in a child, bounded, and killed if it hangs.

import assert from 'node:assert/strict';
import test from 'node:test';
import {fileURLToPath} from 'node:url';
import {WebSocket} from 'ws';
import {
  TEST_TIMEOUT_MS,
  waitFor,
  waitForEqual,
  withTimeout,
} from '../support/harness.js';
import {
  hashesRequest,
  openTinyBase,
  openWs,
  requestIdOf,
  runChild,
  startNative,
} from './support/native.js';

const options = {timeout: TEST_TIMEOUT_MS};
const fixture = (name) =>
  fileURLToPath(new URL(`support/${name}`, import.meta.url));

test(
  'trap 11: throwing listeners and onIgnoredError, called for native connections, never escape',
  options,
  async (t) => {
    const uncaught = [];
    const onUncaught = (error) => uncaught.push(error);
    process.on('uncaughtException', onUncaught);
    t.after(() => process.off('uncaughtException', onUncaught));

    const reported = [];
    const server = await startNative(t, {
      onIgnoredError: (error) => {
        reported.push(error.message);
        throw new Error('from onIgnoredError');
      },
    });
    const thrown = {pathIds: 0, clientIds: 0};
    server.wsServer.addPathIdsListener(() => {
      thrown.pathIds++;
      throw new Error('from a path ids listener');
    });
    server.wsServer.addClientIdsListener(null, () => {
      thrown.clientIds++;
      throw new Error('from a client ids listener');
    });
    // Joining is reported from the JS thread; everything after comes from the plane's threads: an
    // invalid message, and the leaving of the client it gets closed.
    const bad = await openWs(t, server.url('throwing'));
    bad.send('no newline');
    assert.deepEqual(await withTimeout(bad.closed, 'the bad client to close'), {
      code: 1007,
      reason: 'tinybase:14',
    });
    await waitFor(
      () => thrown.pathIds === 2 && thrown.clientIds === 2,
      'the leave to be reported',
    );
    // The listeners' own errors go to onIgnoredError, which throws too.
    await waitFor(
      () =>
        reported.filter((message) => message === 'tinybase:14').length === 1 &&
        reported.filter((message) => message.startsWith('from a')).length === 4,
      `every error reported; got ${JSON.stringify(reported)}`,
    );

    // And the server still relays.
    const a = await openTinyBase(t, server.url('after'));
    const b = await openTinyBase(t, server.url('after'));
    a.store.setValue('still', 'working');
    await waitForEqual(() => b.store.getValues(), {still: 'working'});
    assert.deepEqual(uncaught, []);
  },
);

test(
  'trap 11: an open native connection keeps the process alive, and nothing else does',
  options,
  async (t) => {
    const clients = [];
    let relayed;
    const run = runChild(fixture('hold-while-open.js'), {
      onStdout: (stdout) => {
        const port = stdout.match(/^port (\d+)$/m)?.[1];
        if (port && clients.length === 0) {
          const url = `ws://127.0.0.1:${port}/held`;
          clients.push(openWs(t, url), openWs(t, url));
        }
        // Nothing listens any more: only the connections themselves are left to hold the child.
        if (stdout.includes('stopped listening\n') && relayed === undefined) {
          relayed = (async () => {
            const [a, b] = await Promise.all(clients);
            a.send(hashesRequest('held', b.key));
            await waitFor(() => b.messages.length === 1, 'the relay');
            a.webSocket.close();
            b.webSocket.close();
            return requestIdOf(b.messages[0]);
          })();
        }
      },
    });
    const {code, signal, stdout, stderr} = await run;
    assert.equal(await relayed, 'held');
    assert.deepEqual(
      {code, signal, stdout: stdout.replace(/^port \d+\n/, ''), stderr},
      {
        code: 0,
        signal: null,
        stdout: 'stopped listening\nall gone\n',
        stderr: '',
      },
    );
  },
);

test(
  'a server listening on the plane keeps the process alive until destroy(), and nothing else does',
  options,
  async (t) => {
    let client;
    const run = runChild(fixture('listen-until-destroyed.js'), {
      onStdout: (stdout) => {
        const port = stdout.match(/^port (\d+)$/m)?.[1];
        if (stdout.includes('still listening\n') && client === undefined) {
          client = (async () => {
            const webSocket = await openWs(t, `ws://127.0.0.1:${port}/p`);
            webSocket.webSocket.close();
          })();
        }
      },
    });
    const {code, signal, stdout, stderr} = await run;
    await client;
    assert.deepEqual(
      {code, signal, stdout: stdout.replace(/^port \d+\n/, ''), stderr},
      {
        code: 0,
        signal: null,
        stdout: 'still listening\ndestroyed\n',
        stderr: '',
      },
    );
  },
);

test(
  'trap 11: a process that syncs, then destroys its server under connected clients, exits by itself',
  options,
  async () => {
    const {code, signal, stdout, stderr} = await runChild(
      fixture('destroy-with-clients.js'),
    );
    // The deflate client is kept in JS, which the package warns of once; nothing else is said.
    const said = stderr
      .split('\n')
      .filter((line) => line !== '' && !line.includes('--trace-warnings'))
      .map((line) => line.replace(/^\(node:\d+\) /, ''));
    assert.deepEqual(
      {code, signal, stdout, said},
      {
        code: 0,
        signal: null,
        stdout:
          'converged\nextensions - - permessage-deflate\nclosed 1005 1005 1005\n',
        said: [
          '[TBWSN001] TinyBaseWsServerNativeWarning: Connections that negotiate permessage-deflate ' +
            'stay in JS, on the slower plane. Create the WebSocketServer without perMessageDeflate ' +
            'to have them taken over natively.',
        ],
      },
    );
  },
);

test(
  'trap 12: process.exit() while native connections relay exits 0',
  options,
  async (t) => {
    let traffic;
    let pump;
    const run = runChild(fixture('exit-during-traffic.js'), {
      onStdout: (stdout, child) => {
        const port = stdout.match(/^port (\d+)$/m)?.[1];
        if (port && traffic === undefined) {
          traffic = (async () => {
            const url = `ws://127.0.0.1:${port}/busy`;
            const receiver = await openWs(t, url);
            const sender = await openWs(t, url);
            // Keep the relay busy until the child is gone.
            let sent = 0;
            pump = setInterval(() => {
              for (let index = 0; index < 100; index++) {
                if (sender.webSocket.readyState === WebSocket.OPEN) {
                  sender.send(hashesRequest(`m${sent++}`, receiver.key));
                }
              }
            }, 1);
            await waitFor(() => receiver.messages.length >= 500, 'traffic');
            child.stdin.write('exit\n');
            return Promise.all([receiver.closed, sender.closed]);
          })();
        }
      },
    });
    try {
      const {code, signal, stderr} = await run;
      assert.deepEqual(
        {code, signal, stderr},
        {code: 0, signal: null, stderr: ''},
      );
      // The child took its connections with it.
      await withTimeout(traffic, 'both clients to close');
    } finally {
      clearInterval(pump);
    }
  },
);

test(
  'a worker thread runs the server; terminating it closes its clients; the process exits by itself',
  options,
  async () => {
    const {code, signal, stdout, stderr} = await runChild(
      fixture('worker-main.js'),
    );
    assert.deepEqual(
      {code, signal, stderr},
      {code: 0, signal: null, stderr: ''},
    );
    assert.deepEqual(stdout.trim().split('\n'), [
      'first: converged',
      'first: stats {"paths":1,"clients":2}',
      'first: busy true',
      'first: clients closed true',
      'first: worker exit terminated',
      'second: converged',
      'second: stats {"paths":1,"clients":2}',
      'second: clients closed true',
      'second: worker exit 0',
    ]);
  },
);

test('two servers in one process are independent', options, async (t) => {
  const one = await startNative(t);
  const two = await startNative(t);
  // TinyBase clients take a while to start; they start side by side.
  const [a1, b1, a2, b2, c2] = await Promise.all([
    openTinyBase(t, one.url('same')),
    openTinyBase(t, one.url('same')),
    openTinyBase(t, two.url('same')),
    openTinyBase(t, two.url('same')),
    openTinyBase(t, two.url('other')),
  ]);
  a1.store.setValue('server', 'one');
  a2.store.setValue('server', 'two');
  await waitForEqual(() => b1.store.getValues(), {server: 'one'}, 'one');
  await waitForEqual(() => b2.store.getValues(), {server: 'two'}, 'two');
  assert.deepEqual(one.wsServer.getStats(), {paths: 1, clients: 2});
  assert.deepEqual(two.wsServer.getStats(), {paths: 2, clients: 3});
  assert.deepEqual(one.wsServer.getPathIds(), ['same']);
  assert.deepEqual(two.wsServer.getPathIds().sort(), ['other', 'same']);
  assert.deepEqual(
    one.wsServer.getClientIds('same').sort(),
    [a1.key, b1.key].sort(),
  );

  await withTimeout(one.wsServer.destroy(), 'destroying server one');
  await withTimeout(
    Promise.all([a1.closed, b1.closed]),
    'its clients to close',
  );
  for (const client of [a2, b2, c2]) {
    assert.equal(client.webSocket.readyState, WebSocket.OPEN);
  }
  b2.store.setValue('after', 'destroy');
  await waitForEqual(
    () => a2.store.getValues(),
    {server: 'two', after: 'destroy'},
    'two, after one was destroyed',
  );
  assert.deepEqual(two.wsServer.getStats(), {paths: 2, clients: 3});
  assert.equal(c2.webSocket.readyState, WebSocket.OPEN);
});
