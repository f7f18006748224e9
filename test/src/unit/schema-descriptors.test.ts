// The build's schema descriptors (X.proto.json beside each built-in X.proto, core/src/images/
// schemas.ts): loading from them gives the schema parsing the text gives, and a descriptor that
// no longer matches its .proto is not used.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, test } from 'node:test';
import * as protobuf from 'protobufjs';
import { addSchemaFile, describesMessage, describeSchemaFile, schemaRoot, schemaSource } from '@amber/core/dist/images/schemas';
import { ImageError, ImageStore, registerImageType } from '@amber/core';
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

test('a .proto edited after its descriptor, to the same length, is hashed: the text is parsed', () => {
  const dir = makeTmpDir('schema-descriptor-same-length');
  const file = path.join(dir, 'thing.proto');
  fs.writeFileSync(file, 'syntax = "proto2";\npackage thingsame;\nmessage Thing { required uint32 a = 1; }\n');
  fs.writeFileSync(`${file}.json`, describeSchemaFile(file));
  const old = new Date(Date.now() - 60_000);
  fs.utimesSync(`${file}.json`, old, old);
  fs.writeFileSync(file, 'syntax = "proto2";\npackage thingsame;\nmessage Thing { required uint32 z = 1; }\n');
  assert.equal(schemaSource(file), 'text');
});

test('message constructors (made without new Function) set what protobufjs\'s generated ones set', () => {
  const root = freshRoot();
  addSchemaFile(root, path.join(repoRoot, 'core', 'proto', 'mm.proto'));
  root.resolveAll();
  const mm = root.lookupType('amber.MmEntry');
  const lists = mm.fieldsArray.filter((f) => f.repeated).map((f) => f.name);
  assert.ok(lists.length > 0, 'MmEntry has repeated fields');
  const made = mm.create({ mmStartCode: 4096n, vmas: undefined }) as unknown as Record<string, unknown>;
  assert.equal(mm.ctor.name, 'MmEntry');
  assert.ok(made instanceof mm.ctor);
  assert.equal(made.mmStartCode, 4096n);
  for (const name of lists) assert.deepEqual(made[name], [], `${name} starts empty, on the instance`);
  assert.ok(Object.prototype.hasOwnProperty.call(made, lists[0]));
  // and protobufjs's own decode, which builds its messages with the constructor, still works
  const bytes = mm.encode(mm.fromObject({ mmStartCode: 4096, mmEndCode: 8192, mmStartData: 0, mmEndData: 0, mmStartStack: 0, mmStartBrk: 0, mmBrk: 0, mmArgStart: 0, mmArgEnd: 0, mmEnvStart: 0, mmEnvEnd: 0, exeFileId: 1, vmas: [] })).finish();
  const back = mm.toObject(mm.decode(bytes), { longs: String }) as Record<string, unknown>;
  assert.equal(back.mmEndCode, '8192');
});

test('a type whose descriptor defines its messages is loaded at first use; a message it lacks is still refused at registration', () => {
  const dir = makeTmpDir('schema-descriptor-lazy');
  const file = path.join(dir, 'lazy.proto');
  fs.writeFileSync(file, 'syntax = "proto2";\npackage lazytest;\nmessage Head { required uint32 v = 1; }\nmessage Item { required uint32 a = 1; optional string s = 2; }\n');
  fs.writeFileSync(`${file}.json`, describeSchemaFile(file));
  assert.equal(describesMessage(file, 'lazytest.Item'), true);
  assert.equal(describesMessage(file, 'lazytest.Nope'), false);
  assert.equal(describesMessage(file, 'lazytest'), false, 'a package is not a message');
  registerImageType({ type: 'lazy-items', magic: 0x6c617a79, protoFile: file, message: 'lazytest.Item', headMessage: 'lazytest.Head' });
  assert.ok(!schemaRoot.files.includes(file), 'registration did not load the schema');
  // first use: written and read back through the schema, which is loaded now
  const imgs = makeTmpDir('schema-descriptor-lazy-images');
  const store = ImageStore.forDump(imgs);
  store.write('lazy-items', 'lazy-items-1', [{ a: 5, s: 'x' }], { head: { v: 2 } });
  assert.ok(schemaRoot.files.includes(file), 'the first write loaded it');
  assert.deepEqual(store.read<{ a: number; s: string }>('lazy-items', 'lazy-items-1').entries.map((e) => [e.a, e.s]), [[5, 'x']]);
  // a message the descriptor does not define goes the eager way: refused now, by name
  assert.throws(() => registerImageType({ type: 'lazy-nope', magic: 0x6c617a7a, protoFile: file, message: 'lazytest.Nope' }),
    (e: unknown) => e instanceof ImageError && /has no message lazytest\.Nope/.test(e.message));
});
