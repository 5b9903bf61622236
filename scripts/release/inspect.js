// Checks a built addon is what its platform package promises, from the file
// alone: its object format and CPU (`file`), the C library it links against
// and the newest glibc symbol version it needs (readelf), and that it exports
// Node-API's module entry point while leaving napi_* calls to the Node that
// loads it (readelf for ELF, LLVM's nm and objdump for Mach-O).

import {execFileSync} from 'node:child_process';
import {statSync} from 'node:fs';
import {GLIBC_FLOOR} from './targets.js';

const ENTRY_POINT = 'napi_register_module_v1';

const run = (command, args, env) =>
  execFileSync(command, args, {
    encoding: 'utf8',
    env,
    maxBuffer: 64 * 1024 * 1024,
    stdio: ['ignore', 'pipe', 'pipe'],
  });

const compareVersions = (a, b) => {
  const [x, y] = [a, b].map((version) => version.split('.').map(Number));
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const difference = (x[i] ?? 0) - (y[i] ?? 0);
    if (difference) {
      return difference;
    }
  }
  return 0;
};

const check = (condition, message) => {
  if (!condition) {
    throw new Error(message);
  }
};

// Linux: the C library comes from DT_NEEDED and the glibc floor from the
// newest GLIBC_x.y version any imported symbol asks for.
const inspectElf = (path, target, env) => {
  const needed = [
    ...run('readelf', ['-d', '-W', path], env).matchAll(
      /\(NEEDED\)\s+Shared library: \[(.+?)\]/g,
    ),
  ].map(([, library]) => library);
  const symbols = run('readelf', ['--dyn-syms', '-W', path], env)
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields.length >= 8);
  const exported = symbols.some(
    ([, , , , bind, , index, name]) =>
      bind == 'GLOBAL' && index != 'UND' && name == ENTRY_POINT,
  );
  const imported = symbols.filter(
    ([, , , , , , index, name]) => index == 'UND' && name.startsWith('napi_'),
  ).length;
  const glibcVersions = [
    ...new Set(
      symbols.flatMap(([, , , , , , , name]) => {
        const version = /@GLIBC_([\d.]+)/.exec(name ?? '');
        return version ? [version[1]] : [];
      }),
    ),
  ].sort(compareVersions);
  const newestGlibc = glibcVersions.at(-1);

  let libc;
  if (target.abi == 'gnu') {
    check(
      needed.includes('libc.so.6'),
      `${path} should link glibc (libc.so.6), links ${needed}`,
    );
    check(
      newestGlibc && compareVersions(newestGlibc, GLIBC_FLOOR) <= 0,
      `${path} needs glibc ${newestGlibc}, newer than the floor ${GLIBC_FLOOR}`,
    );
    libc = `glibc ≥ ${newestGlibc}`;
  } else {
    check(
      !needed.includes('libc.so.6') && glibcVersions.length == 0,
      `${path} should not link glibc (libc.so.6, GLIBC_*): ${needed} ${glibcVersions}`,
    );
    check(
      needed.includes('libc.so'),
      `${path} should link musl's libc.so dynamically, links ${needed}`,
    );
    libc = 'musl (libc.so)';
  }
  return {libc, exported, imported, needed};
};

// macOS: napi_* are left to the loading node by `-undefined dynamic_lookup`,
// so they show as undefined; the minimum macOS is in the load commands.
const inspectMachO = (path, target, env) => {
  const defined = run('llvm-nm', ['-g', '--defined-only', path], env);
  const undefinedSymbols = run('llvm-nm', ['-u', path], env);
  const headers = run(
    'llvm-objdump',
    ['--macho', '--private-headers', path],
    env,
  );
  const minimum =
    /cmd LC_BUILD_VERSION[\s\S]*?minos ([\d.]+)/.exec(headers)?.[1] ??
    /cmd LC_VERSION_MIN_MACOSX[\s\S]*?version ([\d.]+)/.exec(headers)?.[1];
  check(
    minimum && compareVersions(minimum, target.macosFloor) <= 0,
    `${path} needs macOS ${minimum}, newer than the floor ${target.macosFloor}`,
  );
  return {
    libc: `macOS ≥ ${minimum}`,
    exported: new RegExp(`\\b_${ENTRY_POINT}$`, 'm').test(defined),
    imported: (undefinedSymbols.match(/^\s*_napi_\w+$/gm) ?? []).length,
    needed: [],
  };
};

export const inspectAddon = (path, target, env = process.env) => {
  const format = run('file', ['-b', path], env).trim();
  check(
    target.format.test(format),
    `${path} is "${format}", not a ${target.platformArchABI} addon`,
  );
  const {libc, exported, imported} =
    target.platform == 'darwin'
      ? inspectMachO(path, target, env)
      : inspectElf(path, target, env);
  check(exported, `${path} does not export ${ENTRY_POINT}`);
  check(imported > 0, `${path} imports no napi_* function from Node`);
  return {
    target: target.triple,
    size: statSync(path).size,
    format,
    libc,
    napi: `exports ${ENTRY_POINT}, imports ${imported} napi_* functions`,
  };
};
