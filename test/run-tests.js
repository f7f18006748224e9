#!/usr/bin/env node
'use strict';
// Runs every compiled test (test/dist/**/*.test.js) with node's test runner, one file at a time:
// integration tests share pids, the subreaper role and machine-wide state. Targets are built first.
// Usage: node test/run-tests.js [SUBSTRING...]   (only files whose path contains one of them)
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const dist = path.join(__dirname, 'dist');

function findTests(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return findTests(p);
    return e.isFile() && e.name.endsWith('.test.js') ? [p] : [];
  });
}

async function main() {
  if (!fs.existsSync(path.join(dist, 'harness', 'index.js'))) {
    console.error('test/dist/harness is missing: run `npx tsc -b` (or `npm test`) first');
    return 2;
  }
  await require('./dist/harness').buildTargets();

  const filters = process.argv.slice(2);
  // Unit tests first: they are fast and a broken harness makes integration failures meaningless.
  const rank = (f) => (f.includes(`${path.sep}unit${path.sep}`) ? 0 : 1);
  const files = findTests(dist)
    .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
    .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  if (files.length === 0) {
    console.error(`no test files found under ${dist}${filters.length ? ` matching ${filters.join(', ')}` : ''}`);
    return 1;
  }
  const args = ['--test', '--test-concurrency=1', ...files];
  // TAP on non-terminals (CI logs) so the summary reads "# pass N" / "# fail N".
  if (!process.stdout.isTTY) args.splice(1, 0, '--test-reporter=tap');
  const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
  if (r.error) throw r.error;
  return r.status ?? 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
