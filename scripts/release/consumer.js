// A user's project: an empty folder where the released tarballs are installed
// with npm, and where two TinyBase clients then sync through the installed
// server (__test__/fixtures/sync-and-destroy.js, which prints "converged").

import {execFile} from 'node:child_process';
import {copyFileSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {packageJson, root} from './targets.js';

// Hang guards only: installing from npm's cache takes seconds, and a sync
// under qemu-user well under a minute.
const STEP_TIMEOUT_MS = 300_000;

export const runCommand = (command, args, {cwd, env = process.env} = {}) =>
  new Promise((resolve, reject) =>
    execFile(
      command,
      args,
      {cwd, env, timeout: STEP_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024},
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

// The peer dependencies at the versions this checkout uses, which npm's
// cache already holds.
const peers = () =>
  Object.keys(packageJson.peerDependencies).map((name) => {
    const {version} = JSON.parse(
      readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8'),
    );
    return `${name}@${version}`;
  });

// `npmFlags` may force npm (--force) to install the platform package a
// foreign CPU's Node will load.
export const installConsumer = async ({tarballs, npmFlags = [], env}) => {
  const project = mkdtempSync(join(tmpdir(), 'tinybase-ws-server-consumer-'));
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({
      name: 'consumer',
      version: '1.0.0',
      private: true,
      type: 'module',
    }),
  );
  await runCommand(
    'npm',
    [
      'install',
      '--prefer-offline',
      '--no-audit',
      '--no-fund',
      ...npmFlags,
      ...tarballs,
      ...peers(),
    ],
    {cwd: project, env},
  );
  copyFileSync(
    join(root, '__test__', 'fixtures', 'sync-and-destroy.js'),
    join(project, 'sync-and-destroy.js'),
  );
  return project;
};

// `node` may be a command prefix, e.g. qemu-aarch64 -L <sysroot> <node>.
export const syncTwoClients = (project, [command, ...prefix], env) =>
  runCommand(command, [...prefix, 'sync-and-destroy.js', packageJson.name], {
    cwd: project,
    env,
  });
