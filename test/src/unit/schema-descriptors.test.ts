// The build's schema descriptors (X.proto.json beside each built-in X.proto, core/src/images/
// schemas.ts): loading from them gives the schema parsing the text gives, and a descriptor that
// no longer matches its .proto is not used.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, test } from 'node:test';
import * as protobuf from 'protobufjs';
import { addSchemaFile, describeSchemaFile, schemaRoot, schemaSource } from '@amber/core/dist/images/schemas';
import { makeTmpDir, removeTmpDirs, repoRoot } from '../harness';

after(removeTmpDirs);

const PROTO_DIRS = ['core', 'plugins/mm', 'plugins/fs', 'plugins/unix', 'plugins/net-tcp', 'plugins/tty', 'plugins/ipc'].map((p) => path.join(repoRoot, p, 'proto'));
const builtinProtos = () => PROTO_DIRS.filter((d) => fs.existsSync(d)).flatMap((d) => fs.readdirSync(d).filter((f) => f.endsWith('.proto')).map((f) => path.join(d, f)));

function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : x);
}

function freshRoot(): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = schemaRoot.resolvePath;
  return root;
}

test('every built-in .proto has a current descriptor, and loading from them gives the schema parsing gives', () => {
  const files = builtinProtos();
  assert.ok(files.length >= 20, `found ${files.length} .proto files`);
  for (const f of files) assert.equal(schemaSource(f), 'descriptor', `${f}: descriptor missing or stale (npm run build writes them)`);
  const described = freshRoot();
  for (const f of files) addSchemaFile(described, f);
  described.resolveAll();
  const parsed = freshRoot();
  for (const f of files) parsed.loadSync(f, { keepCase: false });
  parsed.resolveAll();
  // as JSON with sorted keys: the two add files in different orders, and protobufjs's option
  // objects differ in prototype
  assert.equal(canonical(described.toJSON()), canonical(parsed.toJSON()));
  // and a message encodes the same through both
  const msg = { fd: 3, id: 7, flags: 0o2, type: 1 };
  const enc = (r: protobuf.Root) => Buffer.from(r.lookupType('amber.FdinfoEntry').encode(msg).finish()).toString('hex');
  assert.equal(enc(described), enc(parsed));
});

test('a descriptor older than its .proto is not used: the text is parsed', () => {
  const dir = makeTmpDir('schema-descriptor');
  const file = path.join(dir, 'thing.proto');
  fs.writeFileSync(file, 'syntax = "proto2";\npackage thingtest;\nmessage Thing { required uint32 a = 1; }\n');
  fs.writeFileSync(`${file}.json`, describeSchemaFile(file));
  assert.equal(schemaSource(file), 'descriptor');
  fs.writeFileSync(file, 'syntax = "proto2";\npackage thingtest;\nmessage Thing { required uint32 a = 1; optional uint32 b = 2; }\n');
  assert.equal(schemaSource(file), 'text');
  const root = freshRoot();
  addSchemaFile(root, file);
  root.resolveAll();
  assert.deepEqual(Object.keys(root.lookupType('thingtest.Thing').fields), ['a', 'b']);
});
