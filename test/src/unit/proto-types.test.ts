import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { repoRoot } from '../harness';

interface Output {
  proto: string;
  target: string;
  text: string | null;
}
interface Generator {
  stale(): Output[];
  generate(file: string, pkg: { name: string; dir: string }, packages: { name: string; dir: string }[]): string;
}

// scripts/protos.js (npm run protos) writes src/generated/*.ts of every package from its proto/*.proto.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const generator = require(path.join(repoRoot, 'scripts', 'protos.js')) as Generator;

test('every generated image type is what its .proto gives now (else: npm run protos)', () => {
  const stale = generator.stale().map((o) => `${path.relative(repoRoot, o.target)} (${o.text === null ? 'its .proto is gone' : `from ${path.relative(repoRoot, o.proto)}`})`);
  assert.deepEqual(stale, [], `out of date with the .proto files — run \`npm run protos\`: ${stale.join(', ')}`);
});

test("the generator gives the codec's conventions, and a changed .proto gives a different file", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amber-proto-types-'));
  const pkg = { name: '@acme/x', dir };
  fs.mkdirSync(path.join(dir, 'proto'));
  const file = path.join(dir, 'proto', 'x.proto');
  const source = `syntax = "proto2";
package acme;
enum Colour {
  RED = 1;
  // the other one
  BLUE = 2;
}
// A thing.
message Thing {
  required uint64 addr = 1;
  optional sint32 delta = 2;
  repeated uint32 ids = 3;
  optional Colour colour = 4;
  required bytes blob = 5;
  message Part {
    required string name = 1;
  }
  repeated Part parts = 6;
}
`;
  fs.writeFileSync(file, source);
  const text = generator.generate(file, pkg, [pkg]);
  assert.match(text, /export const Colour = \{\n {2}RED: 1,\n {2}\/\*\* the other one \*\/\n {2}BLUE: 2,\n\} as const;/);
  assert.match(text, /\/\*\* A thing\. \*\/\nexport interface Thing \{\n {2}addr: bigint;\n {2}delta\?: number;\n {2}ids: number\[\];\n {2}\/\*\* Colour \*\/\n {2}colour\?: number;\n {2}blob: Buffer;\n {2}parts: ThingPart\[\];\n\}/);
  assert.match(text, /export interface ThingPart \{\n {2}name: string;\n\}/);
  fs.writeFileSync(file, source.replace('required bytes blob = 5;', 'required bytes blob = 5;\n  optional bool fresh = 7;'));
  const changed = generator.generate(file, pkg, [pkg]);
  assert.notEqual(changed, text);
  assert.match(changed, /blob: Buffer;\n {2}fresh\?: boolean;/);
});
