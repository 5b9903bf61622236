// The release as users get it: the main package and its linux-x64-gnu
// platform package, cross-built and packed by `npm run pack:release`,
// installed into an empty project on a machine without Rust.

import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import {once} from 'node:events';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import {tmpdir} from 'node:os';
import {delimiter, join} from 'node:path';
import test from 'node:test';
import {inspectAddon} from '../scripts/release/inspect.js';
import {filesIn} from '../scripts/release/pack.js';
import {
  installConsumer,
  runCommand,
  syncTwoClients,
} from '../scripts/release/consumer.js';
import {packageJson, releaseTargets, root} from '../scripts/release/targets.js';

const {name, version} = packageJson;
const target = releaseTargets().find(
  ({platformArchABI}) => platformArchABI == 'linux-x64-gnu',
);
const onLinuxX64 =
  process.platform == 'linux' &&
  process.arch == 'x64' &&
  Boolean(process.report.getReport().header.glibcVersionRuntime);

// A hang guard for the cross build: from a clean clone it takes minutes.
const PACK_TIMEOUT_MS = 40 * 60_000;

const treeOf = (dir) =>
  Object.fromEntries(
    filesIn(dir).map((file) => [file, readFileSync(join(dir, file), 'utf8')]),
  );

// Runs `npm run pack:release` for linux-x64-gnu alone into `out`; resolves
// to its exit code (3: a cross tool could not be installed).
const packLinuxX64 = async (out) => {
  const child = spawn(
    process.execPath,
    [
      join(root, 'scripts', 'release', 'pack.js'),
      '--only',
      target.platformArchABI,
      '--out',
      out,
    ],
    {cwd: root, stdio: ['ignore', 'pipe', 'pipe']},
  );
  let output = '';
  child.stdout.on('data', (data) => (output += data));
  child.stderr.on('data', (data) => (output += data));
  const timer = setTimeout(() => child.kill('SIGKILL'), PACK_TIMEOUT_MS);
  const [code] = await once(child, 'close');
  clearTimeout(timer);
  return {code, output};
};

const unpack = async (tarball) => {
  const dir = mkdtempSync(join(tmpdir(), 'tinybase-ws-server-unpacked-'));
  await runCommand('tar', ['-xzf', tarball, '-C', dir]);
  return join(dir, 'package');
};

// PATH without any folder that holds cargo or rustc: what a user without a
// Rust toolchain has.
const withoutRust = () => {
  const PATH = process.env.PATH.split(delimiter)
    .filter(
      (dir) =>
        !existsSync(join(dir, 'cargo')) && !existsSync(join(dir, 'rustc')),
    )
    .join(delimiter);
  return {...process.env, PATH};
};

test('the committed npm/ folders are what napi create-npm-dirs makes', async (t) => {
  const stage = mkdtempSync(join(tmpdir(), 'tinybase-ws-server-npm-dirs-'));
  t.after(() => rmSync(stage, {recursive: true, force: true}));
  cpSync(join(root, 'package.json'), join(stage, 'package.json'));
  await runCommand(join(root, 'node_modules', '.bin', 'napi'), [
    'create-npm-dirs',
    '--cwd',
    stage,
  ]);
  assert.deepEqual(treeOf(join(root, 'npm')), treeOf(join(stage, 'npm')));
  assert.deepEqual(
    readdirSync(join(root, 'npm')).sort(),
    releaseTargets()
      .map(({platformArchABI}) => platformArchABI)
      .sort(),
  );
});

test(
  'the released packages install without Rust and sync two TinyBase clients',
  {skip: onLinuxX64 ? false : 'the release test builds for linux-x64-gnu'},
  async (t) => {
    const out = mkdtempSync(join(tmpdir(), 'tinybase-ws-server-dist-'));
    t.after(() => rmSync(out, {recursive: true, force: true}));

    let dist = out;
    const packed = await packLinuxX64(out);
    if (packed.code == 3 && !process.env.CI) {
      // Only off CI: a machine that cannot install zig or a Rust target may
      // still test what an earlier `npm run pack:release` left in dist/.
      dist = join(root, 'dist');
      const cached = [
        `${name}-${version}.tgz`,
        `${target.packageName}-${version}.tgz`,
      ];
      if (!cached.every((file) => existsSync(join(dist, file)))) {
        t.skip(`no cross toolchain here and no cached dist/: ${packed.output}`);
        return;
      }
      t.diagnostic(
        `no cross toolchain here, testing the cached dist/: ${packed.output}`,
      );
    } else {
      assert.equal(packed.code, 0, packed.output);
    }
    const mainTarball = join(dist, `${name}-${version}.tgz`);
    const platformTarball = join(dist, `${target.packageName}-${version}.tgz`);

    const main = await unpack(mainTarball);
    t.after(() => rmSync(join(main, '..'), {recursive: true, force: true}));
    const mainFiles = filesIn(main);
    assert.deepEqual(
      mainFiles.filter((file) => file.endsWith('.node')),
      [],
      'the main package carries no addon',
    );
    for (const file of ['binding.cjs', 'index.js', 'lib/native.cjs']) {
      assert.ok(mainFiles.includes(file), `${file} is in the main package`);
    }
    const mainJson = JSON.parse(
      readFileSync(join(main, 'package.json'), 'utf8'),
    );
    assert.equal(mainJson.optionalDependencies[target.packageName], version);
    assert.ok(
      Object.entries(mainJson.optionalDependencies).every(
        ([dependency, at]) =>
          dependency.startsWith(`${name}-`) && at == version,
      ),
      JSON.stringify(mainJson.optionalDependencies),
    );

    const platform = await unpack(platformTarball);
    t.after(() => rmSync(join(platform, '..'), {recursive: true, force: true}));
    assert.deepEqual(filesIn(platform), [
      'README.md',
      'package.json',
      target.addonFile,
    ]);
    const platformJson = JSON.parse(
      readFileSync(join(platform, 'package.json'), 'utf8'),
    );
    assert.deepEqual(
      platformJson,
      JSON.parse(
        readFileSync(
          join(root, 'npm', target.platformArchABI, 'package.json'),
          'utf8',
        ),
      ),
    );
    const addon = inspectAddon(join(platform, target.addonFile), target);
    t.diagnostic(JSON.stringify(addon));
    assert.match(addon.libc, /^glibc ≥ 2\.(1[0-7]|[0-9])$/);

    const env = withoutRust();
    await assert.rejects(runCommand('cargo', ['--version'], {env}));
    await assert.rejects(runCommand('rustc', ['--version'], {env}));
    const project = await installConsumer({
      tarballs: [mainTarball, platformTarball],
      env,
    });
    t.after(() => rmSync(project, {recursive: true, force: true}));
    const installed = join(project, 'node_modules');
    assert.deepEqual(
      filesIn(join(installed, name)).filter((file) => file.endsWith('.node')),
      [],
    );
    assert.ok(
      existsSync(join(installed, target.packageName, target.addonFile)),
    );

    assert.equal(
      await syncTwoClients(project, [process.execPath], env),
      'converged\n',
    );

    // Without its platform package the loader says which one it needs, and
    // how to build the addon, which an installed package cannot do itself.
    rmSync(join(installed, target.packageName), {recursive: true});
    const loadError = async () => {
      const error = await runCommand(
        process.execPath,
        ['--input-type=module', '-e', `await import('${name}')`],
        {cwd: project, env},
      ).then(
        () => assert.fail('the package loaded without its addon'),
        (error) => error,
      );
      assert.match(error.message, /in a checkout of .+'s repository/);
      return error.message;
    };
    assert.match(
      await loadError(),
      new RegExp(
        `${target.packageName}@${version}: reinstall without --omit=optional`,
      ),
    );
    // A copy that lists no platform package for this machine names the one
    // it would need.
    const installedJson = join(installed, name, 'package.json');
    writeFileSync(
      installedJson,
      JSON.stringify({...mainJson, optionalDependencies: undefined}),
    );
    assert.match(
      await loadError(),
      new RegExp(
        `lists no prebuilt addon for this platform \\(it would be ${target.packageName}\\)`,
      ),
    );
  },
);
