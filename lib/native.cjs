'use strict';

// The loader that napi-rs generates finds the addon beside the package (a
// build from source) or in the platform package installed as an optional
// dependency. When neither is there its error blames an npm bug; this wrapper
// says instead what was expected and how to get it.

const {existsSync} = require('node:fs');
const {dirname, join} = require('node:path');
const packageJson = require('../package.json');

const isMusl = () => {
  try {
    return !process.report.getReport().header.glibcVersionRuntime;
  } catch {
    return false;
  }
};

// The suffix napi-rs gives platform packages, e.g. linux-x64-gnu.
const platformSuffix = () => {
  const {platform, arch} = process;
  if (platform == 'linux') {
    return `${platform}-${arch}-${isMusl() ? 'musl' : 'gnu'}`;
  }
  return platform == 'win32'
    ? `${platform}-${arch}-msvc`
    : `${platform}-${arch}`;
};

// A checkout holds the Rust sources; an installed package does not.
const buildAdvice = () => {
  const packageDir = dirname(__dirname);
  return existsSync(join(packageDir, 'Cargo.toml'))
    ? `To build it from source, install a Rust toolchain and run ` +
        `\`npm run build\` in ${packageDir}.`
    : `To build it from source, install a Rust toolchain, run ` +
        `\`npm install\` in a checkout of ${packageJson.name}'s repository ` +
        `and install that checkout instead.`;
};

// `napi pre-publish` adds the platform packages to optionalDependencies when
// the package is released; a source checkout has none.
const explain = (cause) => {
  const platformPackage = `${packageJson.name}-${platformSuffix()}`;
  const listed = Object.hasOwn(
    packageJson.optionalDependencies ?? {},
    platformPackage,
  );
  return new Error(
    `${packageJson.name}: could not load its native addon on ` +
      `${process.platform}-${process.arch}. ` +
      (listed
        ? `It comes from the optional dependency ` +
          `${platformPackage}@${packageJson.version}: reinstall without ` +
          `--omit=optional (or --no-optional) if it was skipped. `
        : `This copy lists no prebuilt addon for this platform ` +
          `(it would be ${platformPackage}). `) +
      buildAdvice(),
    {cause},
  );
};

try {
  module.exports = require('../binding.cjs');
} catch (error) {
  throw explain(error);
}
