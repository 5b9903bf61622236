import assert from 'node:assert/strict';
import {generateKeyPairSync} from 'node:crypto';
import {mkdtemp, readFile, readdir, rm, writeFile} from 'node:fs/promises';
import http from 'node:http';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import test from 'node:test';
import {SignJWT} from 'jose';
import {WebSocket} from 'ws';
import {
  DEFAULT_DATA_DIR,
  DEFAULT_HOST,
  DEFAULT_PORT,
  HELP,
  UsageError,
  parseCliArgs,
} from '../lib/cli/args.js';
import {accessFromClaims} from '../lib/cli/auth.js';
import {pathIdToFileName} from '../lib/cli/file-names.js';
import parsePrometheusText from 'parse-prometheus-text-format';
import {OPCODES, openTcp} from './native/support/native.js';
import {
  TEST_TIMEOUT_MS,
  closeOf,
  defer,
  openClient,
  plain,
  spawnNode,
  waitFor,
  waitForEqual,
} from './support/harness.js';
import {name as implementation} from './support/implementation.js';

const options = {timeout: TEST_TIMEOUT_MS};
const PETS = {pets: {fido: {species: 'dog'}, felix: {species: 'cat'}}};
const READY = /^tinybase-ws-server listening on (ws:\/\/127\.0\.0\.1:(\d+))$/m;

const BIN = fileURLToPath(
  new URL('../bin/tinybase-ws-server.js', import.meta.url),
);
const {version} = JSON.parse(
  await readFile(new URL('../package.json', import.meta.url), 'utf8'),
);

// The bin serves with this package's createWsServer. Against the reference
// implementation the same command code runs with TinyBase's injected instead.
const SERVE =
  implementation == 'native'
    ? [BIN]
    : [
        '--input-type=module',
        '-e',
        `import {runCli} from ${JSON.stringify(new URL('../lib/cli/main.js', import.meta.url).href)};
        await runCli(process.argv.slice(1), () =>
          import(${JSON.stringify(import.meta.resolve('tinybase/synchronizers/synchronizer-ws-server'))}));`,
        '--',
      ];

const tempDir = async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tinybase-ws-server-cli-'));
  defer(t, () => rm(dir, {recursive: true, force: true}));
  return dir;
};

const spawnCli = (t, entry, args, cwd) =>
  spawnNode(t, [...entry, ...args], cwd);

// For runs that end by themselves: --help, --version, bad flags.
const runBin = async (t, args) =>
  spawnCli(t, [BIN], args, await tempDir(t)).exited;

const startServer = async (t, args, cwd) => {
  const server = spawnCli(
    t,
    SERVE,
    ['--port', '0', '--host', '127.0.0.1', ...args],
    cwd,
  );
  const [, url, port] = await waitFor(() => {
    if (server.child.exitCode !== null) {
      throw new Error(`server exited early: ${JSON.stringify(server.output)}`);
    }
    return READY.exec(server.output.stdout);
  }, 'the listening line');
  return {...server, url, port: Number(port)};
};

const stop = (server, signal) => {
  server.child.kill(signal);
  return server.exited;
};

test('path ids map to distinct, safe file names', () => {
  const ids = [
    'petShop',
    'petshop',
    'PETSHOP',
    '../../etc/x',
    '..\\..\\etc\\x',
    'a/b',
    'a%2Fb',
    '%2e%2e',
    '%2E%2E',
    '.',
    '..',
    '...',
    '',
    ' ',
    'con',
    'CON',
    'nul',
    'com1',
    'lpt9',
    'café',
    'cafe\u0301',
    '日本',
    '🐶',
    '\0',
    'a:b*c?"<>|',
    'x'.repeat(500),
    'x'.repeat(499) + 'y',
    'é'.repeat(300),
    '\uD800',
    '\uDC00',
    '\uFFFD',
    'a~b',
  ];
  const names = ids.map(pathIdToFileName);
  for (const [index, name] of names.entries()) {
    const id = JSON.stringify(ids[index]).slice(0, 60);
    assert.match(name, /^[a-zA-Z0-9_%~-]+\.json$/, id);
    assert.ok(name.length <= 200, id);
    assert.ok(
      !/^(con|prn|aux|nul|com\d|lpt\d)\./i.test(name),
      `${id} gave a name Windows reserves: ${name}`,
    );
    assert.equal(
      pathIdToFileName(ids[index]),
      name,
      `${id} maps the same way twice`,
    );
  }
  // Distinct even where the file system ignores case.
  assert.equal(
    new Set(names.map((name) => name.toLowerCase())).size,
    ids.length,
  );
});

test('ordinary path ids decode back from their file names', () => {
  for (const id of [
    'petShop',
    '../../etc/x',
    'a/b',
    '%2e%2e',
    '.',
    '..',
    'café',
    '🐶',
    'con',
  ]) {
    const name = pathIdToFileName(id);
    assert.equal(decodeURIComponent(name.slice(0, -'.json'.length)), id);
  }
  assert.equal(pathIdToFileName('petShop'), 'pet%53hop.json');
  assert.equal(pathIdToFileName('a/b'), 'a%2Fb.json');
  assert.equal(pathIdToFileName('con'), '%63on.json');
});

test('empty, very long and malformed path ids get a hashed name', () => {
  for (const id of ['', 'x'.repeat(181), '\uD800']) {
    assert.match(pathIdToFileName(id), /~[0-9a-f]{32}\.json$/);
  }
  assert.doesNotMatch(pathIdToFileName('x'.repeat(180)), /~/);
  // A long id keeps a readable start and never splits an escape.
  assert.match(
    pathIdToFileName('é'.repeat(300)),
    /^(%C3%A9)+~[0-9a-f]{32}\.json$/,
  );
});

test('flags are parsed with their defaults', () => {
  assert.deepEqual(parseCliArgs([]), {
    help: false,
    version: false,
    port: DEFAULT_PORT,
    host: DEFAULT_HOST,
    dataDir: DEFAULT_DATA_DIR,
    logLevel: 'normal',
    logFormat: 'text',
    metrics: true,
    keepPathSeconds: 0,
    cluster: undefined,
    auth: undefined,
  });
  assert.equal(DEFAULT_PORT, 8047);
  assert.deepEqual(
    parseCliArgs(['-p', '0', '--host', '::1', '--data', 'd', '-v']),
    {
      help: false,
      version: false,
      port: 0,
      host: '::1',
      dataDir: 'd',
      logLevel: 'verbose',
      logFormat: 'text',
      metrics: true,
      keepPathSeconds: 0,
      cluster: undefined,
      auth: undefined,
    },
  );
  assert.equal(parseCliArgs(['--port=65535']).port, 65535);
  assert.equal(parseCliArgs(['--memory']).dataDir, undefined);
  assert.equal(parseCliArgs(['-q']).logLevel, 'quiet');
  assert.equal(parseCliArgs(['--help', '--port', 'nope']).help, true);
  assert.equal(parseCliArgs(['--version']).version, true);
  assert.throws(() => parseCliArgs(['--port', '65536']), UsageError);
  assert.deepEqual(
    parseCliArgs(['--redis', 'redis://127.0.0.1:6390', '--cluster-prefix', 'x'])
      .cluster,
    {redis: 'redis://127.0.0.1:6390', prefix: 'x'},
  );
  assert.deepEqual(parseCliArgs(['--redis', 'redis://r']).cluster, {
    redis: 'redis://r',
    prefix: undefined,
  });
  assert.throws(() => parseCliArgs(['--cluster-prefix', 'x']), UsageError);
  assert.throws(() => parseCliArgs(['--redis', '']), UsageError);
  assert.equal(parseCliArgs(['--metrics=false']).metrics, false);
  assert.equal(parseCliArgs(['--metrics', 'true']).metrics, true);
  assert.equal(parseCliArgs(['--log-format', 'json']).logFormat, 'json');
  assert.equal(parseCliArgs(['--log-format=text']).logFormat, 'text');
  assert.equal(
    parseCliArgs(['--keep-path-seconds', '2.5']).keepPathSeconds,
    2.5,
  );
});

test('--help prints the usage and exits 0', options, async (t) => {
  for (const flag of ['--help', '-h']) {
    const {code, stdout, stderr} = await runBin(t, [flag]);
    assert.equal(code, 0);
    assert.equal(stdout, HELP);
    assert.equal(stderr, '');
  }
  for (const flag of [
    '--port',
    '--host',
    '--data',
    '--memory',
    '--quiet',
    '--verbose',
    '--version',
  ]) {
    assert.ok(HELP.includes(flag), flag);
  }
});

test('--version prints the package version and exits 0', options, async (t) => {
  const {code, stdout, stderr} = await runBin(t, ['--version']);
  assert.equal(code, 0);
  assert.equal(stdout, `${version}\n`);
  assert.equal(stderr, '');
});

test('bad flags are explained and exit 2', options, async (t) => {
  const cases = [
    [['--bogus'], "'--bogus'"],
    [['serve'], "'serve'"],
    [['--port'], '--port'],
    [['--port', 'abc'], "'abc'"],
    [['--port', '65536'], "'65536'"],
    [['--port', '-1'], '--port'],
    [['--port', '8.5'], "'8.5'"],
    [['--host', ''], '--host'],
    [['--data', ''], '--data'],
    [['--memory', '--data', 'x'], '--memory and --data'],
    [['--quiet', '--verbose'], '--quiet and --verbose'],
    [['--memory=yes'], '--memory'],
    [['--metrics=no'], "'no'"],
    [['--metrics'], '--metrics'],
    [['--log-format', 'xml'], "'xml'"],
    [['--keep-path-seconds=-1'], "'-1'"],
    [['--keep-path-seconds', 'soon'], "'soon'"],
  ];
  for (const [args, mention] of cases) {
    const {code, stdout, stderr} = await runBin(t, args);
    const what = JSON.stringify(args);
    assert.equal(code, 2, what);
    assert.equal(stdout, '', what);
    assert.match(stderr, /^tinybase-ws-server: /, what);
    assert.ok(stderr.includes(mention), `${what}: ${stderr}`);
    assert.ok(stderr.includes('--help'), what);
  }
});

test(
  'two TinyBase clients sync through it; SIGINT closes them with 1001 and exits 0',
  options,
  async (t) => {
    const cwd = await tempDir(t);
    const server = await startServer(t, ['--memory', '--verbose'], cwd);
    assert.notEqual(server.port, 0);

    const [client1, client2] = await Promise.all([
      openClient(t, `${server.url}/petShop`),
      openClient(t, `${server.url}/petShop`),
    ]);
    client1.store.setCell('pets', 'fido', 'species', 'dog');
    client2.store.setCell('pets', 'felix', 'species', 'cat');
    await waitForEqual(
      () => client1.store.getTables(),
      PETS,
      'client 1 to converge',
    );
    await waitForEqual(
      () => client2.store.getTables(),
      PETS,
      'client 2 to converge',
    );
    await waitFor(
      () =>
        server.output.stdout
          .split('\n')
          .filter((line) => / joined path "petShop"$/.test(line)).length == 2,
      'both clients to be logged',
    );
    assert.match(server.output.stdout, /^keeping data in memory only$/m);
    assert.match(server.output.stdout, /^path "petShop" opened$/m);

    const {code, signal, stdout, stderr} = await stop(server, 'SIGINT');
    assert.deepEqual({code, signal}, {code: 0, signal: null}, stderr);
    assert.equal((await client1.closed).code, 1001);
    assert.equal((await client2.closed).code, 1001);
    assert.match(stdout, /^tinybase-ws-server stopping \(SIGINT\)$/m);
    assert.match(stdout, /^tinybase-ws-server stopped$/m);
    assert.deepEqual(await readdir(cwd), [], '--memory writes no files');
  },
);

test(
  'data in ./tinybase-data survives SIGTERM and a restart',
  options,
  async (t) => {
    const cwd = await tempDir(t);
    const first = await startServer(t, [], cwd);
    assert.match(
      first.output.stdout,
      new RegExp(`^saving data in ${join(cwd, 'tinybase-data')}$`, 'm'),
    );

    const [client1, client2] = await Promise.all([
      openClient(t, `${first.url}/shop/petShop`),
      openClient(t, `${first.url}/shop/petShop`),
    ]);
    client1.store.setCell('pets', 'fido', 'species', 'dog');
    client2.store.setCell('pets', 'felix', 'species', 'cat');
    await waitForEqual(
      () => client1.store.getTables(),
      PETS,
      'client 1 to converge',
    );
    await waitForEqual(
      () => client2.store.getTables(),
      PETS,
      'client 2 to converge',
    );

    const stopped = await stop(first, 'SIGTERM');
    assert.deepEqual(
      {code: stopped.code, signal: stopped.signal},
      {code: 0, signal: null},
      stopped.stderr,
    );
    assert.equal(stopped.stderr, '');
    assert.equal((await client1.closed).code, 1001);
    assert.equal((await client2.closed).code, 1001);
    assert.deepEqual(await readdir(join(cwd, 'tinybase-data')), [
      'shop%2Fpet%53hop.json',
    ]);

    const second = await startServer(t, [], cwd);
    const client3 = await openClient(t, `${second.url}/shop/petShop`);
    await waitForEqual(
      () => client3.store.getTables(),
      PETS,
      'client 3 to get the saved data',
    );
    const other = await openClient(t, `${second.url}/shop/petshop`);
    assert.deepEqual(
      plain(other.store.getTables()),
      {},
      'paths differing in case share nothing',
    );

    const restopped = await stop(second, 'SIGTERM');
    assert.equal(restopped.code, 0, restopped.stderr);
    assert.deepEqual((await readdir(join(cwd, 'tinybase-data'))).sort(), [
      'shop%2Fpet%53hop.json',
      'shop%2Fpetshop.json',
    ]);
  },
);

test('--data keeps files in the given folder', options, async (t) => {
  const cwd = await tempDir(t);
  const server = await startServer(t, ['--data', 'store/here'], cwd);
  const client = await openClient(t, `${server.url}/x`);
  client.store.setValue('open', true);
  await waitFor(async () => {
    try {
      return (
        await readFile(join(cwd, 'store', 'here', 'x.json'), 'utf8')
      ).includes('open');
    } catch {
      return false;
    }
  }, 'the value to be saved');
  assert.equal((await stop(server, 'SIGTERM')).code, 0);
  assert.deepEqual(await readdir(cwd), ['store']);
});

test('--quiet prints only the listening line', options, async (t) => {
  const server = await startServer(
    t,
    ['--quiet', '--memory'],
    await tempDir(t),
  );
  const client = await openClient(t, `${server.url}/petShop`);
  const {code, stdout, stderr} = await stop(server, 'SIGTERM');
  assert.equal(code, 0);
  assert.equal((await client.closed).code, 1001);
  assert.equal(stdout, `tinybase-ws-server listening on ${server.url}\n`);
  assert.equal(stderr, '');
});

test('a port already in use is reported and exits 1', options, async (t) => {
  const cwd = await tempDir(t);
  const first = await startServer(t, ['--memory'], cwd);
  const second = spawnCli(
    t,
    SERVE,
    ['--memory', '--host', '127.0.0.1', '--port', String(first.port)],
    cwd,
  );
  const {code, stdout, stderr} = await second.exited;
  assert.equal(code, 1);
  assert.equal(stdout, '');
  assert.match(stderr, /^tinybase-ws-server: could not start: .*EADDRINUSE/);
  assert.equal((await stop(first, 'SIGTERM')).code, 0);
});

// A plain HTTP request on its own connection, as a load balancer's probe.
const request = (port, path, method = 'GET') =>
  new Promise((resolve, reject) => {
    const outgoing = http.request(
      {host: '127.0.0.1', port, path, method, agent: false},
      (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk) => (body += chunk));
        response.on('end', () =>
          resolve({
            status: response.statusCode,
            type: response.headers['content-type'],
            body,
          }),
        );
      },
    );
    outgoing.on('error', reject);
    outgoing.end();
  });

test(
  '/metrics and /health answer on the WebSocket port; anything else is a 404',
  options,
  async (t) => {
    const server = await startServer(t, ['--memory'], await tempDir(t));
    await openClient(t, `${server.url}/petShop`);

    assert.deepEqual(await request(server.port, '/health'), {
      status: 200,
      type: 'text/plain',
      body: 'ok\n',
    });
    assert.equal((await request(server.port, '/health', 'HEAD')).status, 200);
    const metrics = await request(server.port, '/metrics?x=1');
    assert.equal(metrics.status, 200);
    assert.match(metrics.type, /^text\/plain; version=0\.0\.4/);
    const families = new Map(
      parsePrometheusText(metrics.body).map((family) => [family.name, family]),
    );
    assert.equal(families.get('process_cpu_seconds_total')?.type, 'COUNTER');
    if (implementation == 'native') {
      const open = families.get('tinybase_ws_connections_open').metrics;
      assert.deepEqual(
        open.map(({labels, value}) => [labels.plane, value]),
        [
          ['native', '1'],
          ['js', '0'],
        ],
      );
      assert.equal(
        families.get('tinybase_ws_paths_active').metrics[0].value,
        '1',
      );
    }
    for (const [path, method] of [
      ['/', 'GET'],
      ['/metric', 'GET'],
      ['/health/', 'GET'],
      ['/health', 'POST'],
      ['/metrics', 'DELETE'],
    ]) {
      const answer = await request(server.port, path, method);
      assert.equal(answer.status, 404, `${method} ${path}`);
    }
    assert.equal((await stop(server, 'SIGTERM')).code, 0);
  },
);

test(
  '--metrics=false serves neither /metrics nor /health',
  options,
  async (t) => {
    const server = await startServer(
      t,
      ['--memory', '--metrics=false'],
      await tempDir(t),
    );
    const client = await openClient(t, `${server.url}/petShop`);
    for (const path of ['/metrics', '/health']) {
      assert.equal((await request(server.port, path)).status, 404, path);
    }
    client.store.setCell('pets', 'fido', 'species', 'dog');
    assert.equal((await stop(server, 'SIGTERM')).code, 0);
  },
);

test(
  '/health turns 503 as SIGTERM starts the drain, while clients are still being closed',
  options,
  async (t) => {
    const server = await startServer(t, ['--memory'], await tempDir(t));
    // Upgraded by hand and never answering the server's Close: the drain waits on it.
    const lingering = await openTcp(t, server.port, 'petShop');
    assert.equal((await request(server.port, '/health')).status, 200);

    server.child.kill('SIGTERM');
    await waitFor(
      async () => (await request(server.port, '/health')).status == 503,
      '/health to turn 503',
    );
    await waitFor(
      () => lingering.frames.some(({opcode}) => opcode == OPCODES.close),
      'the server to start closing the client',
    );
    assert.equal(lingering.socket.destroyed, false);
    assert.equal(server.child.exitCode, null);
    assert.deepEqual(await request(server.port, '/health'), {
      status: 503,
      type: 'text/plain',
      body: 'draining\n',
    });

    lingering.socket.destroy();
    const {code, stdout} = await server.exited;
    assert.equal(code, 0);
    assert.match(stdout, /^tinybase-ws-server stopped$/m);
  },
);

test('--log-format json writes one JSON object a line', options, async (t) => {
  const server = spawnCli(
    t,
    SERVE,
    [
      '--port',
      '0',
      '--host',
      '127.0.0.1',
      '--memory',
      '--verbose',
      '--log-format',
      'json',
    ],
    await tempDir(t),
  );
  const lines = (text) =>
    text
      .split('\n')
      .filter((line) => line != '')
      .map((line) => JSON.parse(line));
  const {url} = await waitFor(
    () => lines(server.output.stdout).find((entry) => entry.url),
    'the listening object',
  );
  const client = await openClient(t, `${url}/petShop`);
  await waitFor(
    () =>
      lines(server.output.stdout).some(
        (entry) => entry.event == 'client joined',
      ),
    'the client to be logged',
  );
  await client.synchronizer.destroy();
  client.webSocket.close();
  await waitFor(
    () => lines(server.output.stdout).some(({event}) => event == 'path closed'),
    'the path to close',
  );
  const {code, stdout, stderr} = await stop(server, 'SIGTERM');
  assert.equal(code, 0);
  assert.equal(stderr, '');
  const entries = lines(stdout);
  for (const entry of entries) {
    assert.equal(typeof entry.msg, 'string');
    assert.ok(['info', 'debug'].includes(entry.level), entry.level);
    assert.ok(!Number.isNaN(Date.parse(entry.time)), entry.time);
  }
  assert.deepEqual(
    entries.filter(({pathId}) => pathId == 'petShop').map(({event}) => event),
    ['path opened', 'client joined', 'client left', 'path closed'],
  );
  assert.equal(
    entries.find(({url: listening}) => listening).msg,
    `tinybase-ws-server listening on ${url}`,
  );
  assert.ok(entries.some(({msg}) => msg == 'tinybase-ws-server stopped'));
});

test('token path patterns match whole path ids, write before read', () => {
  const grants = (claim, pathId) => accessFromClaims({tinybase: claim}, pathId);
  const claim = {write: ['rooms/*', 'me'], read: ['public/**', 'rooms/*/log']};
  assert.equal(grants(claim, 'rooms/a'), 'write');
  assert.equal(grants(claim, 'rooms/a/log'), 'read');
  assert.equal(grants(claim, 'rooms/a/b'), false);
  assert.equal(grants(claim, 'public/x/y'), 'read');
  assert.equal(grants(claim, 'me'), 'write');
  assert.equal(grants(claim, 'mee'), false);
  assert.equal(grants({read: ['a.b+(c)']}, 'a.b+(c)'), 'read');
  assert.equal(grants({read: ['a.b']}, 'aXb'), false);
  assert.equal(grants({write: ['**']}, ''), 'write');
  assert.throws(() => accessFromClaims({}, 'p'), /'tinybase' claim/);
  assert.throws(() => grants({write: 'rooms/*'}, 'p'), /'tinybase' claim/);
  assert.deepEqual(
    parseCliArgs(['--auth-jwt-secret-file', 's', '--memory']).auth,
    {secretFile: 's', publicKeyFile: undefined},
  );
  assert.throws(
    () => parseCliArgs(['--auth-jwt-public-key-file=']),
    UsageError,
  );
});

test(
  '--auth-jwt-secret-file and --auth-jwt-public-key-file admit, limit and refuse clients by token',
  {...options, skip: implementation != 'native' && 'TinyBase has no authorize'},
  async (t) => {
    const cwd = await tempDir(t);
    const secret = 'a secret of more than thirty-two bytes';
    await writeFile(join(cwd, 'secret'), secret + '\n');
    const {publicKey, privateKey} = generateKeyPairSync('ec', {
      namedCurve: 'P-256',
    });
    await writeFile(
      join(cwd, 'public.pem'),
      publicKey.export({type: 'spki', format: 'pem'}),
    );
    const server = await startServer(
      t,
      [
        '--memory',
        '--verbose',
        '--auth-jwt-secret-file',
        'secret',
        '--auth-jwt-public-key-file',
        'public.pem',
      ],
      cwd,
    );
    const sign = (claims, {key = Buffer.from(secret), alg = 'HS256'} = {}) =>
      new SignJWT(claims)
        .setProtectedHeader({alg})
        .setExpirationTime(claims.exp ?? '1h')
        .sign(key);
    const urlFor = async (path, claims, signing) =>
      `${server.url}/${path}?token=${await sign(claims, signing)}`;
    const refused = async (url) => {
      const webSocket = new WebSocket(url);
      webSocket.on('error', () => {});
      return (await closeOf(webSocket)).code;
    };

    const writer = await openClient(
      t,
      await urlFor('rooms/a', {tinybase: {write: ['rooms/*']}}),
    );
    const reader = await openClient(
      t,
      await urlFor(
        'rooms/a',
        {tinybase: {read: ['rooms/**']}},
        {key: privateKey, alg: 'ES256'},
      ),
    );
    writer.store.setValue('from', 'writer');
    await waitForEqual(() => reader.store.getValue('from'), 'writer', 'read');
    reader.store.setValue('evil', 'reader');
    await reader.synchronizer.load();
    writer.store.setValue('last', 1);
    await waitForEqual(() => reader.store.getValue('last'), 1, 'last');
    assert.deepEqual(plain(writer.store.getValues()), {
      from: 'writer',
      last: 1,
    });

    const anHourAgo = Math.floor(Date.now() / 1000) - 3600;
    for (const url of [
      `${server.url}/rooms/a`,
      await urlFor('rooms/a', {tinybase: {write: ['**']}, exp: anHourAgo}),
      await urlFor('other', {tinybase: {write: ['rooms/*']}}),
      await urlFor(
        'rooms/a',
        {tinybase: {write: ['**']}},
        {key: Buffer.from('not the secret, but as long')},
      ),
      await urlFor('rooms/a', {sub: 'no claim'}),
    ]) {
      assert.equal(await refused(url), 1008, url);
    }
    await waitFor(
      () =>
        /ignored error: .*"exp" claim timestamp check failed/.test(
          server.output.stdout,
        ),
      'the expired token to be logged',
    );
  },
);

const metricValue = async (port, name) => {
  const {body} = await request(port, '/metrics');
  const family = parsePrometheusText(body).find(
    (candidate) => candidate.name == name,
  );
  return Number(
    family.type == 'HISTOGRAM'
      ? family.metrics[0].count
      : family.metrics[0].value,
  );
};

test(
  '--keep-path-seconds keeps a path loaded for a client that comes back',
  {...options, skip: implementation != 'native'},
  async (t) => {
    const cwd = await tempDir(t);
    const server = await startServer(t, ['--keep-path-seconds', '600'], cwd);
    const first = await openClient(t, `${server.url}/petShop`);
    first.store.setCell('pets', 'fido', 'species', 'dog');
    const saved = join(cwd, DEFAULT_DATA_DIR, pathIdToFileName('petShop'));
    await waitFor(
      () =>
        readFile(saved, 'utf8').then(
          (text) => text.includes('"dog"'),
          () => false,
        ),
      'the pet to be saved',
    );
    await first.synchronizer.destroy();
    first.webSocket.close();
    await waitFor(
      async () =>
        (await metricValue(server.port, 'tinybase_ws_connections_open')) == 0,
      'the first client to leave',
    );
    const second = await openClient(t, `${server.url}/petShop`);
    await waitForEqual(
      () => second.store.getTables(),
      {pets: {fido: {species: 'dog'}}},
      'the second client to sync',
    );
    // Its start held the second client's sync until done, so a reload would show by now.
    assert.equal(
      await metricValue(server.port, 'tinybase_ws_persister_start_seconds'),
      1,
    );
    assert.equal(
      await metricValue(server.port, 'tinybase_ws_paths_stopped_total'),
      0,
    );
    assert.equal((await stop(server, 'SIGTERM')).code, 0);
  },
);
