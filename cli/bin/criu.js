#!/usr/bin/env -S -u NODE_EXTRA_CA_CERTS node --optimize-for-size --max-semi-space-size=1 --no-opt
'use strict';
// node's flags: see run.js
// amber-criu: CRIU's command line for amber (see cli/src/criu-main.ts).
process.env.OCLIF_DISABLE_ENGINE_WARNING ??= '1';
// nor read a colour theme from the home directory of whoever runs it (often root through sudo)
process.env.AMBER_DISABLE_THEME ??= '1';
require('./code-cache');
require('./entry')('criu-main.js').criuMain(process.argv.slice(2));
