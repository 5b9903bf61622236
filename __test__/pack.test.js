import assert from 'node:assert/strict';
import {existsSync, readdirSync} from 'node:fs';
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import test from 'node:test';
import {installConsumer, runCommand} from '../scripts/release/consumer.js';
import {packageJson, root} from '../scripts/release/targets.js';

// A bound that only turns a hung npm into a failure; installing from the
// local cache takes seconds.
const options = {timeout: 16 * 60_000};

const addon = readdirSync(root).find((file) =>
  /^tinybase-ws-server-native\..+\.node$/.test(file),
);
const skip =
  addon && existsSync(join(root, 'binding.cjs'))
    ? false
    : 'no built addon (tinybase-ws-server-native.<platform>.node and binding.cjs): run `npm run build` first';

const run = (command, args, cwd) => runCommand(command, args, {cwd});

const nodeEval = (cwd, source, type = 'commonjs') =>
  run(process.execPath, [`--input-type=${type}`, '-e', source], cwd);

test(
  'npm pack ships what a user needs, and nothing else',
  {...options, skip},
  async (t) => {
    const packDir = await mkdtemp(join(tmpdir(), 'tinybase-ws-server-pack-'));
    t.after(() => rm(packDir, {recursive: true, force: true}));

    // --ignore-scripts here and below: `prepare` would rebuild the addon that
    // is already here.
    const [packed] = JSON.parse(
      await run(
        'npm',
        ['pack', '--json', '--ignore-scripts', '--pack-destination', packDir],
        root,
      ),
    );
    const files = packed.files.map(({path}) => path).sort();
    for (const file of [
      'package.json',
      'index.js',
      'index.d.ts',
      'binding.cjs',
      'binding.d.cts',
      addon,
      'lib/native.cjs',
      'lib/cli/main.js',
      'bin/tinybase-ws-server.js',
      'with-schemas/index.js',
      'with-schemas/index.d.ts',
      'simple/index.js',
      'simple/index.d.ts',
    ]) {
      assert.ok(files.includes(file), `${file} is packed: ${files}`);
    }
    for (const file of files) {
      assert.doesNotMatch(
        file,
        /^(src|crates|target|__test__|bench|node_modules|npm|scripts|dist)\//,
      );
    }

    const project = await installConsumer({
      tarballs: [join(packDir, packed.filename)],
      npmFlags: ['--ignore-scripts'],
    });
    t.after(() => rm(project, {recursive: true, force: true}));

    const uses = `
    const webSocketServer = new WebSocketServer({host: '127.0.0.1', port: 0});
    webSocketServer.once('listening', async () => {
      const wsServer = createWsServer(webSocketServer);
      const stats = JSON.stringify(wsServer.getStats());
      await wsServer.destroy();
      console.log(typeof createWsServer, typeof withSchemas, stats);
    });`;
    const expected = 'function function {"paths":0,"clients":0}\n';

    assert.equal(
      await nodeEval(
        project,
        `import {WebSocketServer} from 'ws';
      import {createWsServer} from 'tinybase-ws-server-native';
      import {createWsServer as withSchemas} from 'tinybase-ws-server-native/with-schemas';
      ${uses}`,
        'module',
      ),
      expected,
    );
    assert.equal(
      await nodeEval(
        project,
        `const {WebSocketServer} = require('ws');
      const {createWsServer} = require('tinybase-ws-server-native');
      const {createWsServer: withSchemas} = require('tinybase-ws-server-native/with-schemas');
      ${uses}`,
      ),
      expected,
    );
    // TinyBase's simple server, from its own subpath, relays between real clients
    // on the native plane.
    assert.equal(
      await run(
        process.execPath,
        [
          'sync-and-destroy.js',
          `${packageJson.name}/simple`,
          'createWsServerSimple',
        ],
        project,
      ),
      'converged\n',
    );
    assert.equal(
      await nodeEval(
        project,
        `import {once} from 'node:events';
      import {WebSocket, WebSocketServer} from 'ws';
      import {createWsServerSimple, getPlaneStats} from 'tinybase-ws-server-native';
      const webSocketServer = new WebSocketServer({host: '127.0.0.1', port: 0});
      await once(webSocketServer, 'listening');
      const simple = createWsServerSimple(webSocketServer);
      const client = new WebSocket('ws://127.0.0.1:' + webSocketServer.address().port + '/p');
      await once(client, 'open');
      console.log(JSON.stringify(getPlaneStats(simple).native));
      client.terminate();
      await simple.destroy();`,
        'module',
      ),
      '{"opened":1,"open":1}\n',
    );
    // The native plane listening itself, in a project with its own ws: TinyBase clients sync on
    // the plane, and a plain request reaches the project's HTTP server.
    assert.equal(
      await nodeEval(
        project,
        `import {createServer} from 'node:http';
      import {WebSocket, WebSocketServer} from 'ws';
      import {createMergeableStore} from 'tinybase';
      import {createWsSynchronizer} from 'tinybase/synchronizers/synchronizer-ws-client';
      import {createWsServer, getListenAddress, getPlaneStats} from 'tinybase-ws-server-native';
      const httpServer = createServer((request, response) => response.end('plain ' + request.url));
      const server = createWsServer(
        new WebSocketServer({server: httpServer}), undefined, undefined, undefined, undefined,
        {listen: {port: 0, host: '127.0.0.1'}},
      );
      const url = 'ws://127.0.0.1:' + getListenAddress(server).port + '/p';
      const stores = [createMergeableStore(), createMergeableStore()];
      const synchronizers = await Promise.all(
        stores.map((store) => createWsSynchronizer(store, new WebSocket(url))),
      );
      await Promise.all(synchronizers.map((synchronizer) => synchronizer.startSync()));
      stores[0].setValue('v', 1);
      while (stores[1].getValue('v') !== 1) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const plain = await (await fetch(url.replace('ws:', 'http:'))).text();
      console.log(JSON.stringify(getPlaneStats(server).native), plain);
      synchronizers.forEach((synchronizer) => synchronizer.destroy());
      await server.destroy();`,
        'module',
      ),
      '{"opened":2,"open":2} plain /p\n',
    );
    // prom-client comes with the package, for the command's /metrics.
    assert.equal(
      await nodeEval(
        project,
        `import {WebSocketServer} from 'ws';
      import {Registry} from 'prom-client';
      import {createWsServer, registerMetrics} from 'tinybase-ws-server-native';
      const webSocketServer = new WebSocketServer({host: '127.0.0.1', port: 0});
      webSocketServer.once('listening', async () => {
        const wsServer = createWsServer(webSocketServer);
        const registry = new Registry();
        registerMetrics(wsServer, registry);
        const text = await registry.metrics();
        await wsServer.destroy();
        console.log(text.includes('tinybase_ws_connections_open{plane="native"} 0'));
      });`,
        'module',
      ),
      'true\n',
    );
    assert.equal(
      await run(
        process.execPath,
        [
          join(project, 'node_modules', '.bin', 'tinybase-ws-server'),
          '--version',
        ],
        project,
      ),
      `${packageJson.version}\n`,
    );
  },
);
