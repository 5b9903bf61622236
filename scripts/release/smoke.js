#!/usr/bin/env node
// Installs released tarballs into an empty project, as a user's npm would,
// and syncs two TinyBase clients through the installed server. The release
// workflow runs it on each platform's own runner (or Alpine container) with
// the main tarball and that platform's tarball.
//
// Usage: node scripts/release/smoke.js MAIN.tgz PLATFORM.tgz

import {rmSync} from 'node:fs';
import {resolve} from 'node:path';
import {installConsumer, syncTwoClients} from './consumer.js';

const tarballs = process.argv.slice(2).map((file) => resolve(file));
if (tarballs.length != 2) {
  process.stderr.write('usage: smoke.js MAIN.tgz PLATFORM.tgz\n');
  process.exit(2);
}
const project = await installConsumer({tarballs});
try {
  const synced = await syncTwoClients(project, [process.execPath]);
  process.stdout.write(synced);
  process.exitCode = synced == 'converged\n' ? 0 : 1;
} finally {
  rmSync(project, {recursive: true, force: true});
}
