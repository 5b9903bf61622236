// The release workflow cannot run here, so actionlint checks it: syntax,
// expressions and their types, runner labels, action inputs, and the shell
// of `run:` steps where shellcheck is installed.

import assert from 'node:assert/strict';
import {execFile} from 'node:child_process';
import {readdirSync} from 'node:fs';
import {join} from 'node:path';
import test from 'node:test';
import {actionlintPath, MissingTool} from '../scripts/release/toolchain.js';
import {root} from '../scripts/release/targets.js';

const workflows = join('.github', 'workflows');

test('actionlint finds nothing wrong in the GitHub workflows', async (t) => {
  let actionlint;
  try {
    actionlint = actionlintPath();
  } catch (error) {
    if (error instanceof MissingTool && !process.env.CI) {
      t.skip(error.message);
      return;
    }
    throw error;
  }
  const files = readdirSync(join(root, workflows))
    .filter((file) => /\.ya?ml$/.test(file))
    .map((file) => join(workflows, file));
  assert.ok(files.includes(join(workflows, 'release.yml')), `${files}`);
  const {code, output} = await new Promise((resolve) =>
    execFile(
      actionlint,
      ['-no-color', ...files],
      {cwd: root, timeout: 120_000},
      (error, stdout, stderr) =>
        resolve({code: error?.code ?? 0, output: stdout + stderr}),
    ),
  );
  assert.equal(code, 0, output);
});
