#!/usr/bin/env node
'use strict';
// Start-up is a good share of a short command. oclif would load semver (~45 modules) on every
// start just to check node's version against its own engines field; package.json already says.
process.env.OCLIF_DISABLE_ENGINE_WARNING ??= '1';
require('./code-cache');
require('../dist/main').main(process.argv.slice(2));
