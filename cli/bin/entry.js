'use strict';
/**
 * Which build of the CLI to run: the one-file build (dist/amber.js, scripts/bundle.js) when it is
 * there and current, else tsc's modules. In a checkout, `tsc -b` alone rebuilds the modules and
 * leaves the bundle behind: one older than any package's tsbuildinfo is stale and not used
 * (an installed package has no tsbuildinfo: its bundle is the build). AMBER_BUNDLE=0 runs the
 * modules (a profile split by source file needs their paths: the bench's --profile).
 */
const fs = require('node:fs');
const path = require('node:path');

const DIST = path.join(__dirname, '..', 'dist');
const REPO = path.join(__dirname, '..', '..');
const BUILD_INFOS = ['cli', 'core', 'plugins/mm', 'plugins/fs', 'plugins/unix', 'plugins/net-tcp', 'plugins/tty', 'plugins/ipc'].map((p) => path.join(REPO, p, 'tsconfig.tsbuildinfo'));

function mtime(file) {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return undefined;
  }
}

function bundleIsCurrent() {
  if (process.env.AMBER_BUNDLE === '0') return false;
  const bundle = mtime(path.join(DIST, 'amber.js'));
  if (bundle === undefined) return false;
  return BUILD_INFOS.every((f) => (mtime(f) ?? 0) <= bundle);
}

/** The bundle (it exports main and criuMain), or tsc's module `name` of dist/. */
function cliModule(name) {
  return require(bundleIsCurrent() ? path.join(DIST, 'amber.js') : path.join(DIST, name));
}

module.exports = cliModule;
module.exports.bundleIsCurrent = bundleIsCurrent;
