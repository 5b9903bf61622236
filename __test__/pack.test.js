import assert from 'node:assert/strict';
import {execFile} from 'node:child_process';
import {existsSync, readFileSync, readdirSync} from 'node:fs';
import {mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import test from 'node:test';

const root = fileURLToPath(new URL('..', import.meta.url));
const packageJson = JSON.parse(
  await readFile(join(root, 'package.json'), 'utf8'),
);

// Bounds that only turn a hung npm into a failure; installing from the local
// cache takes seconds.
const STEP_TIMEOUT_MS = 240_000;
const options = {timeout: 4 * STEP_TIMEOUT_MS};

const addon = readdirSync(root).find((file) =>
  /^tinybase-ws-server-native\..+\.node$/.test(file),
);
const skip =
  addon && existsSync(join(root, 'binding.cjs'))
    ? false
    : 'no built addon (tinybase-ws-server-native.<platform>.node and binding.cjs): run `npm run build` first';

const run = (command, args, cwd) =>
  new Promise((resolve, reject) =>
    execFile(
      command,
      args,
      {cwd, timeout: STEP_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024},
      (error, stdout, stderr) =>
        error
          ? reject(
              Object.assign(error, {
                message: `${command} ${args.join(' ')} failed: ${error.message}\n${stdout}\n${stderr}`,
              }),
            )
          : resolve(stdout),
    ),
  );

const nodeEval = (cwd, source, type = 'commonjs') =>
  run(process.execPath, [`--input-type=${type}`, '-e', source], cwd);

// The versions already installed here are in npm's cache, so the install
// below needs no network.
const installedVersion = (name) =>
  JSON.parse(
    readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8'),
  ).version;

test(
  'npm pack ships what a user needs, and nothing else',
  {...options, skip},
  async (t) => {
    const packDir = await mkdtemp(join(tmpdir(), 'tinybase-ws-server-pack-'));
    t.after(() => rm(packDir, {recursive: true, force: true}));

    // --ignore-scripts: `prepare` would rebuild the addon that is already here.
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
    ]) {
      assert.ok(files.includes(file), `${file} is packed: ${files}`);
    }
    for (const file of files) {
      assert.doesNotMatch(
        file,
        /^(src|crates|target|__test__|bench|node_modules)\//,
      );
    }

    const project = join(packDir, 'project');
    await mkdir(project);
    await writeFile(
      join(project, 'package.json'),
      JSON.stringify({name: 'consumer', version: '1.0.0', private: true}),
    );
    await run(
      'npm',
      [
        'install',
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        '--ignore-scripts',
        join(packDir, packed.filename),
        `tinybase@${installedVersion('tinybase')}`,
        `ws@${installedVersion('ws')}`,
      ],
      project,
    );

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
