#!/usr/bin/env node
// Cross-compiles every release target's addon on this machine and writes the
// publishable tarballs into dist/: one per platform package (npm/<platform>)
// and the main package, whose optionalDependencies list those packages at
// the package's version and which carries no addon of its own.
//
// Each step is the napi CLI's own: `napi build -x` (cargo-zigbuild, glibc
// pinned to GLIBC_FLOOR), `napi create-npm-dirs`, `napi artifacts` and
// `napi pre-publish`. They run on a staged copy of the package, so the
// checkout keeps no optionalDependencies and `npm ci` still builds from
// source.
//
// Usage: npm run pack:release [-- --only linux-x64-gnu,...] [--out DIR]
//        [--from DIR]   (pack addons built elsewhere instead of building)
// Exit code 3: a cross tool could not be installed (the message says which).

import {spawn} from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import {tmpdir} from 'node:os';
import {basename, join, resolve} from 'node:path';
import {parseArgs} from 'node:util';
import {inspectAddon} from './inspect.js';
import {runArm64UnderQemu} from './qemu-arm64.js';
import {crossToolchain, inspectionToolchain, MissingTool} from './toolchain.js';
import {packageJson, releaseTargets, root} from './targets.js';

const napi = join(root, 'node_modules', '.bin', 'napi');

const run = (command, args, {cwd = root, env = process.env} = {}) =>
  new Promise((resolvePromise, reject) => {
    let stdout = '';
    const child = spawn(command, args, {
      cwd,
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    child.stdout.on('data', (data) => (stdout += data));
    child.on('error', reject);
    child.on('close', (code) =>
      code == 0
        ? resolvePromise(stdout)
        : reject(
            new Error(`${command} ${args.join(' ')} exited ${code}\n${stdout}`),
          ),
    );
  });

// Every file under `dir`, as sorted paths relative to it.
export const filesIn = (dir) =>
  readdirSync(dir, {recursive: true, withFileTypes: true})
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).slice(dir.length + 1))
    .sort();

// The committed npm/<platform> folders must be exactly what
// `napi create-npm-dirs` makes from package.json, so they are never edited by
// hand and never lag behind a version bump.
const checkPlatformPackages = (generated, targets) => {
  const stale = targets.flatMap(({platformArchABI}) => {
    const fresh = join(generated, platformArchABI);
    const committed = join(root, 'npm', platformArchABI);
    return filesIn(fresh).some(
      (file) =>
        !existsSync(join(committed, file)) ||
        readFileSync(join(committed, file), 'utf8') !=
          readFileSync(join(fresh, file), 'utf8'),
    )
      ? [platformArchABI]
      : [];
  });
  if (stale.length) {
    throw new Error(
      `npm/${stale.join(', npm/')} differ from what \`napi create-npm-dirs\` ` +
        'makes from package.json: run `npx napi create-npm-dirs` and commit npm/',
    );
  }
};

// Everything `npm pack` would ship from the checkout except addons built
// here from source: the main package's addon comes from a platform package.
const stageMainPackage = async (stage, build) => {
  const [{files}] = JSON.parse(
    await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts']),
  );
  for (const {path} of files) {
    if (path != 'package.json' && !path.endsWith('.node')) {
      cpSync(join(root, path), join(stage, path));
    }
  }
  for (const generated of ['binding.cjs', 'binding.d.cts']) {
    cpSync(join(build, generated), join(stage, generated));
  }
};

const pack = async (dir, out) => {
  const [{filename, files}] = JSON.parse(
    await run(
      'npm',
      ['pack', '--json', '--ignore-scripts', '--pack-destination', out],
      {cwd: dir},
    ),
  );
  return {file: join(out, filename), files: files.map(({path}) => path)};
};

const buildAddon = (target, output, env) => {
  process.stderr.write(`building ${target.buildTarget}\n`);
  return run(
    napi,
    [
      'build',
      '--platform',
      '--release',
      '--cross-compile',
      '--target',
      target.buildTarget,
      '--output-dir',
      output,
      '--js',
      'binding.cjs',
      '--dts',
      'binding.d.cts',
    ],
    {
      env: target.macosFloor
        ? {...env, MACOSX_DEPLOYMENT_TARGET: target.macosFloor}
        : env,
    },
  );
};

// Addons built elsewhere (the release workflow's runners), with the loader
// napi generated beside them: found by name anywhere under `dir`.
const copyPrebuilt = (dir, target, output) => {
  const files = filesIn(dir);
  for (const name of [target.addonFile, 'binding.cjs', 'binding.d.cts']) {
    const found = files.find((file) => basename(file) == name);
    if (!found) {
      throw new Error(`no prebuilt ${name} under ${dir}`);
    }
    cpSync(join(dir, found), join(output, name));
  }
};

// `prebuilt`: a folder of addons built elsewhere, packed instead of building.
export const packRelease = async ({only, out, prebuilt}) => {
  const targets = releaseTargets().filter(
    ({platformArchABI}) => !only || only.includes(platformArchABI),
  );
  const unknown = (only ?? []).filter(
    (name) => !targets.some(({platformArchABI}) => platformArchABI == name),
  );
  if (unknown.length || !targets.length) {
    throw new Error(
      `unknown release target ${unknown}; known: ` +
        releaseTargets().map(({platformArchABI}) => platformArchABI),
    );
  }
  const env = prebuilt ? inspectionToolchain(targets) : crossToolchain(targets);

  const stage = mkdtempSync(join(tmpdir(), 'tinybase-ws-server-release-'));
  try {
    // The release's package.json: napi's targets are those built in this run
    // (pre-publish lists each as an optional dependency), and no addon is
    // packed from the main package's root, where `napi artifacts` also
    // copies them.
    writeFileSync(
      join(stage, 'package.json'),
      JSON.stringify(
        {
          ...packageJson,
          files: packageJson.files.filter((file) => !file.endsWith('.node')),
          napi: {...packageJson.napi, targets: targets.map((t) => t.triple)},
        },
        null,
        2,
      ) + '\n',
    );
    await run(napi, ['create-npm-dirs', '--cwd', stage]);
    checkPlatformPackages(join(stage, 'npm'), targets);

    const addons = [];
    for (const target of targets) {
      const output = join(stage, 'artifacts', target.platformArchABI);
      if (prebuilt) {
        copyPrebuilt(prebuilt, target, output);
      } else {
        await buildAddon(target, output, env);
      }
      addons.push(inspectAddon(join(output, target.addonFile), target, env));
    }
    await stageMainPackage(
      stage,
      join(stage, 'artifacts', targets[0].platformArchABI),
    );
    await run(napi, ['artifacts', '--cwd', stage, '--output-dir', 'artifacts']);
    rmSync(join(stage, 'artifacts'), {recursive: true});
    // Only package.json is prepared here; publishing is the release
    // workflow's (.github/workflows/release.yml).
    await run(napi, [
      'pre-publish',
      '--cwd',
      stage,
      '--skip-optional-publish',
      '--no-gh-release',
    ]);

    mkdirSync(out, {recursive: true});
    for (const file of readdirSync(out)) {
      if (file.endsWith('.tgz')) {
        rmSync(join(out, file));
      }
    }
    const platforms = [];
    for (const [index, target] of targets.entries()) {
      const tarball = await pack(
        join(stage, 'npm', target.platformArchABI),
        out,
      );
      if (!tarball.files.includes(target.addonFile)) {
        throw new Error(`${tarball.file} lacks ${target.addonFile}`);
      }
      platforms.push({...addons[index], tarball: basename(tarball.file)});
    }
    const main = await pack(stage, out);
    checkMainPackage(main, stage, targets);
    return {main: basename(main.file), platforms};
  } finally {
    rmSync(stage, {recursive: true, force: true});
  }
};

const checkMainPackage = (main, stage, targets) => {
  const addon = main.files.find((file) => file.endsWith('.node'));
  if (addon) {
    throw new Error(`the main package must carry no addon, has ${addon}`);
  }
  const {optionalDependencies = {}} = JSON.parse(
    readFileSync(join(stage, 'package.json'), 'utf8'),
  );
  const expected = Object.fromEntries(
    targets.map(({packageName}) => [packageName, packageJson.version]),
  );
  if (JSON.stringify(optionalDependencies) != JSON.stringify(expected)) {
    throw new Error(
      `the main package's optionalDependencies are ${JSON.stringify(optionalDependencies)}, ` +
        `expected ${JSON.stringify(expected)}`,
    );
  }
};

const table = ({main, platforms}) =>
  [
    '| package tarball | target | size | libc / OS floor | file | Node-API |',
    '| --- | --- | --- | --- | --- | --- |',
    ...platforms.map(
      ({tarball, target, size, libc, format, napi: symbols}) =>
        `| ${tarball} | ${target} | ${(size / 1024).toFixed(0)} KiB | ${libc} | ${format} | ${symbols} |`,
    ),
    `| ${main} | (main package, no addon) | | | | |`,
  ].join('\n');

const main = async () => {
  const {values} = parseArgs({
    options: {
      only: {type: 'string'},
      out: {type: 'string', default: join(root, 'dist')},
      from: {type: 'string'},
    },
  });
  const out = resolve(values.out);
  const prebuilt = values.from && resolve(values.from);
  const result = await packRelease({
    only: values.only?.split(','),
    out,
    prebuilt,
  });
  // Built here for a CPU this machine lacks: run it under emulation. An
  // arm64 machine (the release workflow's arm64 runner) runs it natively in
  // its own test step instead.
  const arm64 =
    !prebuilt &&
    process.arch != 'arm64' &&
    result.platforms.find(({target}) => target == 'aarch64-unknown-linux-gnu');
  if (arm64) {
    arm64.run = await runArm64UnderQemu(
      join(out, result.main),
      join(out, arm64.tarball),
    );
  }
  writeFileSync(join(out, 'artifacts.json'), JSON.stringify(result, null, 2));
  process.stdout.write(table(result) + '\n');
  if (arm64) {
    process.stdout.write(`\nlinux-arm64-gnu under qemu-user: ${arm64.run}\n`);
  }
};

if (
  process.argv[1] &&
  resolve(process.argv[1]) == resolve(import.meta.filename)
) {
  main().catch((error) => {
    process.stderr.write(`pack:release: ${error.message}\n`);
    process.exit(error instanceof MissingTool ? 3 : 1);
  });
}
