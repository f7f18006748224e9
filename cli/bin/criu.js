#!/usr/bin/env node
'use strict';
// amber-criu: CRIU's command line for amber (see cli/src/criu-main.ts).
process.env.OCLIF_DISABLE_ENGINE_WARNING ??= '1';
require('./code-cache');
require('./entry')('criu-main.js').criuMain(process.argv.slice(2));
