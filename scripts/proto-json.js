#!/usr/bin/env node
'use strict';
/**
 * Part of `npm run build`, after tsc: beside every workspace package's proto/X.proto, the
 * descriptor X.proto.json the core loads instead of parsing the text (core/src/images/schemas.ts).
 */
const fs = require('node:fs');
const path = require('node:path');

const REPO = path.resolve(__dirname, '..');
const { describeSchemaFile } = require(path.join(REPO, 'core', 'dist', 'images', 'schemas.js'));

const workspaces = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')).workspaces;
for (const ws of workspaces) {
  const dir = path.join(REPO, ws, 'proto');
  if (!fs.existsSync(dir)) continue;
  for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.proto'))) {
    const file = path.join(dir, f);
    const json = describeSchemaFile(file);
    // unchanged descriptors keep their mtime
    if (!fs.existsSync(`${file}.json`) || fs.readFileSync(`${file}.json`, 'utf8') !== json) fs.writeFileSync(`${file}.json`, json);
  }
}
