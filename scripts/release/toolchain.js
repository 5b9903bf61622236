// Installs what cross-compiling the release needs, from the registries this
// project reaches, and says exactly what is missing when it cannot:
// - zig (PyPI's `ziglang`) as the C toolchain and linker for every target,
//   with `cargo-zigbuild` (its PyPI wheel: a prebuilt binary, no compile),
//   in a virtual environment under .cache/release-tools, reused while the
//   pinned versions are there;
// - the Rust standard library of each target (`rustup target add`);
// - for Mach-O addons, llvm-nm and llvm-objdump (rustup's `llvm-tools`),
//   since binutils here reads only ELF.

import {execFileSync} from 'node:child_process';
import {existsSync} from 'node:fs';
import {delimiter, join} from 'node:path';
import {root} from './targets.js';

const PINNED = {ziglang: '0.17.1', 'cargo-zigbuild': '0.24.1'};

export class MissingTool extends Error {}

const run = (command, args, options = {}) =>
  execFileSync(command, args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    ...options,
  });

const attempt = (what, fix, action) => {
  try {
    return action();
  } catch (error) {
    const detail = (error.stderr || error.message || '').trim();
    throw new MissingTool(`${what} is missing: ${fix}\n${detail}`, {
      cause: error,
    });
  }
};

const installedPythonPackages = (python) => {
  try {
    return Object.fromEntries(
      JSON.parse(run(python, ['-m', 'pip', 'list', '--format=json'])).map(
        ({name, version}) => [name, version],
      ),
    );
  } catch {
    return {};
  }
};

const zigEnvironment = () => {
  const prefix = join(root, '.cache', 'release-tools');
  const bin = join(prefix, 'bin');
  const python = join(bin, 'python3');
  const installed = installedPythonPackages(python);
  const wanted = Object.entries(PINNED);
  if (wanted.some(([name, version]) => installed[name] != version)) {
    process.stderr.write(
      `installing ${wanted.map((entry) => entry.join('==')).join(' ')} into ${prefix}\n`,
    );
    attempt(
      'a Python 3 with venv',
      'install python3 and python3-venv (Debian) so `python3 -m venv` works',
      () => existsSync(python) || run('python3', ['-m', 'venv', prefix]),
    );
    attempt(
      'zig and cargo-zigbuild',
      `\`pip install ${wanted.map((entry) => entry.join('==')).join(' ')}\` from PyPI failed`,
      () =>
        run(python, [
          '-m',
          'pip',
          'install',
          '--quiet',
          '--disable-pip-version-check',
          ...wanted.map((entry) => entry.join('==')),
        ]),
    );
  }
  return bin;
};

const rustTargets = (triples) => {
  const installed = attempt(
    'rustup',
    'install Rust with rustup (https://rustup.rs), which adds targets',
    () => run('rustup', ['target', 'list', '--installed']).split('\n'),
  );
  const missing = triples.filter((triple) => !installed.includes(triple));
  for (const triple of missing) {
    process.stderr.write(`rustup target add ${triple}\n`);
    attempt(
      `the Rust standard library for ${triple}`,
      `\`rustup target add ${triple}\` failed (it downloads from rustup's own server)`,
      () => run('rustup', ['target', 'add', triple]),
    );
  }
};

const llvmTools = () => {
  const sysroot = run('rustc', ['--print', 'sysroot']).trim();
  const host = /^host: (.+)$/m.exec(run('rustc', ['-vV']))[1];
  const bin = join(sysroot, 'lib', 'rustlib', host, 'bin');
  if (!existsSync(join(bin, 'llvm-nm'))) {
    process.stderr.write('rustup component add llvm-tools\n');
    attempt(
      'llvm-nm and llvm-objdump (to inspect Mach-O addons)',
      '`rustup component add llvm-tools` failed',
      () => run('rustup', ['component', 'add', 'llvm-tools']),
    );
  }
  return bin;
};

// Returns the environment the builds and checks run in: PATH gains zig,
// cargo-zigbuild and, where Mach-O addons are built, LLVM's binary tools.
export const crossToolchain = (targets) => {
  rustTargets(targets.map(({triple}) => triple));
  const paths = [zigEnvironment()];
  if (targets.some(({platform}) => platform == 'darwin')) {
    paths.push(llvmTools());
  }
  return {
    ...process.env,
    PATH: [...paths, process.env.PATH].join(delimiter),
  };
};
