// What each release target is built as here and what its addon must be.
//
// The list of targets is napi's own (`napi.targets` in package.json), the one
// `napi create-npm-dirs` and `napi pre-publish` read, so the platform packages,
// the main package's optionalDependencies and the builds cannot drift apart.

import {readFileSync} from 'node:fs';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import {parseTriple} from '@napi-rs/cli';

export const root = fileURLToPath(new URL('../..', import.meta.url));

export const packageJson = JSON.parse(
  readFileSync(join(root, 'package.json'), 'utf8'),
);

// The oldest glibc a linux-*-gnu addon may need: 2.17 (CentOS 7, Ubuntu
// 14.04, Debian 8 and every later distribution), the floor napi-rs's own
// packages keep. cargo-zigbuild links against it when the target names it.
export const GLIBC_FLOOR = '2.17';

// The oldest macOS an addon may need: the oldest each arch's Node (20, the
// engines floor) runs on. Passed to zig as MACOSX_DEPLOYMENT_TARGET, whose
// own default is the newest macOS.
const MACOS_FLOORS = {x64: '10.15', arm64: '11.0'};

// What `file` says of a correct addon, by napi's platform and arch (macOS's
// own `file` names a Mach-O's CPU last).
const FORMATS = {
  'linux-x64': /^ELF 64-bit LSB shared object, x86-64\b/,
  'linux-arm64': /^ELF 64-bit LSB shared object, ARM aarch64\b/,
  'darwin-x64':
    /^Mach-O 64-bit (x86_64 dynamically linked shared library|dynamically linked shared library x86_64)/,
  'darwin-arm64':
    /^Mach-O 64-bit (arm64 dynamically linked shared library|dynamically linked shared library arm64)/,
};

export const releaseTargets = () =>
  packageJson.napi.targets.map((triple) => {
    const target = parseTriple(triple);
    const format = FORMATS[`${target.platform}-${target.arch}`];
    if (!format) {
      throw new Error(`no release check is known for ${triple}`);
    }
    return {
      ...target,
      // The spelling cargo-zigbuild reads as "this target, linked against
      // this glibc".
      buildTarget: target.abi == 'gnu' ? `${triple}.${GLIBC_FLOOR}` : triple,
      packageName: `${packageJson.napi.packageName}-${target.platformArchABI}`,
      addonFile: `${packageJson.napi.binaryName}.${target.platformArchABI}.node`,
      format,
      macosFloor:
        target.platform == 'darwin' ? MACOS_FLOORS[target.arch] : undefined,
    };
  });
