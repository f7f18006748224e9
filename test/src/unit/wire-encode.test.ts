import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import * as protobuf from 'protobufjs';
import Long from 'long';
import { SchemaError, decodeMessage, encodeMessage } from '@amber/core/dist/images/codec';
import { PROTO_DIR, loadSchemaFile, schemaRoot } from '@amber/core/dist/images/schemas';

// amber's own encoder against protobufjs's, on every message type of every built-in .proto
// (core's and the plugins'), with random values at the edges of each field's range.

const REPO = join(__dirname, '..', '..', '..');
const protoDirs = [PROTO_DIR, ...readdirSync(join(REPO, 'plugins')).map((p) => join(REPO, 'plugins', p, 'proto'))];
for (const dir of protoDirs) {
  let files: string[] = [];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.proto'));
  } catch {
    continue;
  }
  for (const f of files) loadSchemaFile(join(dir, f));
}

function typesIn(ns: protobuf.NamespaceBase): protobuf.Type[] {
  return ns.nestedArray.flatMap((o) => [...(o instanceof protobuf.Type ? [o] : []), ...(o instanceof protobuf.Namespace || o instanceof protobuf.Type ? typesIn(o) : [])]);
}
const TYPES = typesIn(schemaRoot);

/** A small deterministic generator, so a failure names a seed that repeats it. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 0x100000000;
  };
}

const EDGES_U64 = [0n, 1n, 127n, 128n, 0xffffffffn, 0x100000000n, (1n << 53n) + 1n, (1n << 63n) - 1n, 1n << 63n, (1n << 64n) - 1n];
const EDGES_I64 = [0n, -1n, 1n, -(1n << 31n), (1n << 31n) - 1n, -(1n << 53n) - 1n, -(1n << 63n), (1n << 63n) - 1n];
const EDGES_I32 = [0, 1, -1, 127, 128, -128, 0x7fffffff, -0x80000000];
const EDGES_U32 = [0, 1, 127, 128, 16383, 16384, 0x7fffffff, 0xffffffff];

function pick<T>(r: () => number, xs: T[]): T {
  return xs[Math.floor(r() * xs.length)];
}

function valueOf(f: protobuf.Field, r: () => number, depth: number): unknown {
  if (f.resolvedType instanceof protobuf.Type) return randomMessage(f.resolvedType, r, depth + 1);
  if (f.resolvedType instanceof protobuf.Enum) return pick(r, Object.values(f.resolvedType.values));
  switch (f.type) {
    case 'uint64': case 'fixed64': return pick(r, EDGES_U64);
    case 'int64': case 'sint64': case 'sfixed64': return pick(r, EDGES_I64);
    case 'int32': case 'sint32': case 'sfixed32': return pick(r, EDGES_I32);
    case 'uint32': case 'fixed32': return pick(r, EDGES_U32);
    case 'bool': return r() < 0.5;
    case 'double': return pick(r, [0, -1.5, 1e300, Number.MIN_VALUE]);
    case 'float': return pick(r, [0, -1.5, 1024]);
    case 'string': return pick(r, ['', 'a', '/tmp/ä ø/\u{1f600}', 'x'.repeat(300)]);
    case 'bytes': return Buffer.from(Array.from({ length: Math.floor(r() * 200) }, () => Math.floor(r() * 256)));
    default: throw new Error(`test: no generator for ${f.type}`);
  }
}

function randomMessage(type: protobuf.Type, r: () => number, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of type.fieldsArray) {
    if (!f.required && (depth > 3 || r() < 0.3)) continue;
    out[f.name] = f.repeated ? Array.from({ length: depth > 3 ? 0 : Math.floor(r() * 4) }, () => valueOf(f, r, depth)) : valueOf(f, r, depth);
  }
  return out;
}

/** amber's object as protobufjs takes it: a Long for every 64-bit value. */
function forProtobufjs(v: unknown, f?: protobuf.Field): unknown {
  if (typeof v === 'bigint') return Long.fromString(v.toString(), !/^(int64|sint64|sfixed64)$/.test(f!.type));
  if (Array.isArray(v)) return v.map((x) => forProtobufjs(x, f));
  if (v instanceof Uint8Array || typeof v !== 'object' || v === null) return v;
  const type = f!.resolvedType as protobuf.Type;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, forProtobufjs(x, type.fields[k])]));
}

/** msg as the decoder gives it back: every repeated field an array, empty when absent. */
function asDecoded(msg: Record<string, unknown>, type: protobuf.Type): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of type.fieldsArray) {
    const v = msg[f.name];
    const one = (x: unknown) => (f.resolvedType instanceof protobuf.Type ? asDecoded(x as Record<string, unknown>, f.resolvedType) : x);
    if (f.repeated) out[f.name] = ((v as unknown[] | undefined) ?? []).map(one);
    else if (v !== undefined) out[f.name] = one(v);
  }
  return out;
}

function asTheirs(obj: Record<string, unknown>, type: protobuf.Type): Buffer {
  const wrap = new protobuf.Field('m', 1, type.fullName.replace(/^\./, ''));
  wrap.resolvedType = type;
  return Buffer.from(type.encode(forProtobufjs(obj, wrap) as Record<string, unknown>).finish());
}

test('every built-in message type encodes to the bytes protobufjs writes, and decodes back to itself', () => {
  assert.ok(TYPES.length > 80, `built-in message types found: ${TYPES.length}`);
  let compared = 0;
  for (const [i, type] of TYPES.entries()) {
    for (let round = 0; round < 12; round++) {
      const seed = i * 100 + round + 1;
      const msg = randomMessage(type, rng(seed));
      const ours = encodeMessage(msg, type);
      assert.deepEqual(ours, asTheirs(msg, type), `${type.name}, seed ${seed}`);
      assert.deepEqual(decodeMessage(ours, type), asDecoded(msg, type), `${type.name} decoded, seed ${seed}`);
      compared++;
    }
  }
  assert.ok(compared >= TYPES.length * 12);
});

const root = protobuf.parse(`
syntax = "proto2";
message Inner { required uint64 addr = 1; }
message Outer {
  optional int32 i = 1;
  optional uint32 u = 2;
  optional int64 l = 3;
  optional Inner inner = 4;
  repeated uint32 packed = 5 [packed = true];
  repeated bool flags = 6;
  optional bytes raw = 7;
  repeated uint32 words = 8;
}
message Holder { optional Outer outer = 1; }
`).root;
root.resolveAll();
const Outer = root.lookupType('Outer');
const Holder = root.lookupType('Holder');

test('a value of the wrong type or range, an undeclared field or a missing required one is refused, naming the field', () => {
  const refused = (obj: object, re: RegExp) => assert.throws(() => encodeMessage(obj, Outer), (e: unknown) => e instanceof SchemaError && re.test(e.message));
  refused({ i: 2 ** 31 }, /^i: expected a 32-bit integer, got 2147483648$/);
  refused({ u: -1 }, /^u: expected a 32-bit integer/);
  refused({ u: 1.5 }, /^u: expected a 32-bit integer/);
  refused({ l: 5 }, /^l: expected a bigint \(64-bit field\), got number$/);
  refused({ l: 1n << 63n }, /^l: 9223372036854775808 does not fit a signed 64-bit field$/);
  refused({ inner: {} }, /^missing required field inner\.addr \(Inner\)$/);
  refused({ inner: { addr: 1n, extra: 2 } }, /^inner\.extra: Inner has no such field$/);
  refused({ packed: [1, -2] }, /^packed\[1\]: expected a 32-bit integer/);
  refused({ flags: true }, /^flags: expected an array$/);
  refused({ raw: 'text' }, /^raw: expected a Buffer$/);
  refused({ words: [1, 2, 2 ** 32] }, /^words\[2\]: expected a 32-bit integer, got 4294967296$/);
  refused({ words: [7, '8'] }, /^words\[1\]: expected a 32-bit integer, got 8$/);
  refused({ i: 1, nope: 2 }, /^nope: Outer has no such field$/);
  // two messages deep: the path is built only for the error (a second pass), and names both
  assert.throws(() => encodeMessage({ outer: { inner: { addr: 'x' } } }, Holder), (e: unknown) => e instanceof SchemaError && e.message === 'outer.inner.addr: expected a bigint (64-bit field), got string');
  assert.throws(() => encodeMessage({ outer: { inner: { addr: 1n }, flags: [true, 'two'] } }, Holder), (e: unknown) => e instanceof SchemaError && e.message === 'outer.flags[1]: expected a boolean');
  // and an unpacked repeated uint32, written by its own loop, is the bytes protobufjs writes
  const words = { words: [0, 1, 127, 128, 16383, 16384, 2 ** 32 - 1] };
  assert.equal(encodeMessage(words, Outer).toString('hex'), Buffer.from(Outer.encode(Outer.fromObject(words)).finish()).toString('hex'));
});

test('a submessage longer than 127 bytes gets a two-byte length in front, and packed values one run', () => {
  const outer = { inner: { addr: 1n }, raw: Buffer.alloc(300, 7), packed: Array.from({ length: 200 }, (_, i) => i * 1000) };
  const ours = encodeMessage({ outer }, Holder);
  assert.deepEqual(ours, Buffer.from(Holder.encode({ outer: { ...outer, inner: { addr: 1 } } }).finish()));
  assert.equal(ours[0], (1 << 3) | 2);
  assert.ok(ours[1] >= 0x80 && ours[2] < 0x80, 'two bytes of length');
  assert.deepEqual((decodeMessage(ours, Holder).outer as { packed: number[] }).packed, outer.packed);
});

test('a message holding messages of its own type (a recursive schema) encodes each at its own depth', () => {
  const tree = protobuf.parse(`
syntax = "proto2";
message Node { optional uint32 id = 1; repeated Node kids = 2; optional string name = 3; }
`).root;
  tree.resolveAll();
  const Node = tree.lookupType('Node');
  const value = { id: 1, kids: [{ id: 2, kids: [{ id: 3, name: 'leaf' }] }, { id: 4, name: 'second' }], name: 'root' };
  const ours = encodeMessage(value, Node);
  assert.equal(ours.toString('hex'), Buffer.from(Node.encode(Node.fromObject(value)).finish()).toString('hex'));
  assert.deepEqual(encodeMessage(decodeMessage(ours, Node), Node), ours, "decoded and encoded again, the same bytes");
  // an error deep inside names its path, and the type still encodes after it
  assert.throws(() => encodeMessage({ kids: [{ kids: [{ id: -1 }] }] }, Node), (e: unknown) => e instanceof SchemaError && e.message === 'kids[0].kids[0].id: expected a 32-bit integer, got -1');
  assert.equal(encodeMessage(value, Node).toString('hex'), ours.toString('hex'));
});
