#!/usr/bin/env -S -u NODE_EXTRA_CA_CERTS node --optimize-for-size --max-semi-space-size=1 --no-opt
'use strict';
// The flags above (run as a command; `node run.js` goes without them): amber's heap is small and
// short-lived, and V8's defaults size it for throughput. With them a tiny dump peaks at ~71 MB
// instead of ~80, the 50 x 4 tree at ~82 instead of ~104, for the same CPU time. --no-opt (no
// TurboFan) takes ~5-10 MB more off: its compiler's code pages in node's binary and its zones
// (the tree: 78 -> 68 MB, 1 GiB dump 68 -> 64); amber's hot loops are in the kernel, and the
// user CPU time measured the same or less without it (compiling for TurboFan costs CPU too).
// NODE_EXTRA_CA_CERTS is dropped: node 20 reads and parses the certificates it names at start,
// before any JS (a 220 KB bundle: `node -e 0` in 84 ms instead of 29 on a machine that sets it),
// and amber makes no TLS connection.
const argv = process.argv.slice(2);
// `amber --version` answers before anything is loaded: oclif, its config scan and the code cache
// cost ~0.1 s of a command that only prints a line (the same line oclif prints).
if (argv.length === 1 && argv[0] === '--version') {
  const { name, version } = require('../package.json');
  process.stdout.write(`${name}/${version} ${process.platform}-${process.arch} node-${process.version}\n`);
  return;
}
// Start-up is a good share of a short command. oclif would load semver (~45 modules) on every
// start just to check node's version against its own engines field; package.json already says.
process.env.OCLIF_DISABLE_ENGINE_WARNING ??= '1';
// nor read a colour theme from the home directory of whoever runs it (often root through sudo)
process.env.AMBER_DISABLE_THEME ??= '1';
require('./code-cache');
require('./entry')('main.js').main(argv);
