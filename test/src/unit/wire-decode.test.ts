import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as protobuf from 'protobufjs';
import Long from 'long';
import { SchemaError, decodeMessage, encodeMessage } from '@amber/core/dist/images/codec';

const root = protobuf.parse(`
syntax = "proto2";
message Inner { required uint64 addr = 1; }
message Wide {
  optional uint64 u = 1;
  optional int64 i = 2;
  optional sint64 s = 3;
  optional fixed64 f = 4;
  optional sfixed64 sf = 5;
  repeated uint64 list = 6;
  repeated fixed64 flist = 7;
  optional Inner inner = 8;
  repeated Inner inners = 9;
  optional uint32 small = 10;
  optional bytes raw = 11;
  optional string name = 12;
}
message Needs { required uint64 must = 1; }
message Words {
  repeated uint32 u = 1 [packed = true];
  repeated int32 i = 2 [packed = true];
  repeated sint32 z = 3 [packed = true];
  repeated uint32 loose = 4;
  optional int32 one = 5;
  optional bool flag = 6;
  optional double d = 7;
  optional sfixed32 sf = 8;
}
`, { keepCase: false }).root;
root.resolveAll();
const Wide = root.lookupType('Wide');
const Needs = root.lookupType('Needs');
const Words = root.lookupType('Words');

const TWO53 = 1n << 53n;
const U64 = [0n, 1n, TWO53 - 1n, TWO53, TWO53 + 1n, (1n << 63n) - 1n, 1n << 63n, 0xfffffffffffff001n, (1n << 64n) - 1n];
const I64 = [0n, -1n, -(TWO53 + 1n), TWO53 + 1n, -(1n << 63n), (1n << 63n) - 1n];

test('64-bit values on both sides of 2^53 decode exactly, as bigint', () => {
  for (const u of U64) {
    for (const i of I64) {
      const msg = { u, i, s: i, f: u, sf: i, list: [u, TWO53 + 3n], flist: [u], inner: { addr: u }, inners: [{ addr: u }], small: 7, raw: Buffer.from([1, 2]), name: 'x' };
      const wire = encodeMessage(msg, Wide);
      assert.deepEqual(decodeMessage(wire, Wide), msg);
      // the same bytes as protobufjs's own decoder reads them (Long -> decimal text)
      const theirs = Wide.toObject(Wide.decode(wire), { longs: String });
      assert.equal(theirs.u, u.toString());
      assert.equal(theirs.s, i.toString());
      assert.equal(theirs.sf, i.toString());
      assert.equal(theirs.inner.addr, u.toString());
    }
  }
});

test('absent fields stay absent, repeated ones are empty arrays, unknown fields are skipped', () => {
  const w = protobuf.Writer.create();
  w.uint32((99 << 3) | 0).uint64(5);
  w.uint32((1 << 3) | 0).uint64(3);
  assert.deepEqual(decodeMessage(Buffer.from(w.finish()), Wide), { u: 3n, list: [], flist: [], inners: [] });
});

test('packed repeated 64-bit fields (as other encoders write them) decode too', () => {
  const w = protobuf.Writer.create();
  w.uint32((6 << 3) | 2).fork().uint64(Long.fromString('18446744073709551615', true)).uint64(9).ldelim();
  w.uint32((7 << 3) | 2).fork().fixed64(Long.fromString('9007199254740993', true)).ldelim();
  const got = decodeMessage(Buffer.from(w.finish()), Wide);
  assert.deepEqual(got.list, [(1n << 64n) - 1n, 9n]);
  assert.deepEqual(got.flist, [TWO53 + 1n]);
});

test('a cut, a wrong wire type, or a missing required field is refused, naming the type', () => {
  const full = encodeMessage({ u: (1n << 64n) - 1n }, Wide);
  assert.throws(() => decodeMessage(full.subarray(0, full.length - 1), Wide), (e: unknown) => e instanceof SchemaError && /^not a valid Wide: /.test(e.message));
  const wrong = Buffer.from(protobuf.Writer.create().uint32((1 << 3) | 5).fixed32(1).finish());
  assert.throws(() => decodeMessage(wrong, Wide), /: not a valid Wide: invalid wire type 5 for u$/);
  assert.throws(() => decodeMessage(Buffer.alloc(0), Needs), /: not a valid Needs: missing required 'must'$/);
  const inner = Buffer.from(protobuf.Writer.create().uint32((8 << 3) | 2).fork().ldelim().finish());
  assert.throws(() => decodeMessage(inner, Wide), /missing required 'addr'/);
});

test('32-bit varints, packed and not, decode as protobufjs decodes them (multi-byte, negative, zigzag)', () => {
  const msg = {
    u: [0, 1, 127, 128, 300, 16383, 16384, 0x7fffffff, 0xffffffff],
    i: [-1, -2147483648, 2147483647, 0, 5],
    z: [-3, 3, -2147483648, 2147483647],
    loose: [1, 200, 0xfffffffe],
    one: -7,
    flag: true,
    d: -0.5,
    sf: -2,
  };
  const wire = Buffer.from(Words.encode(Words.fromObject(msg)).finish());
  assert.deepEqual(decodeMessage(wire, Words), msg);
  assert.deepEqual(decodeMessage(wire, Words), Words.toObject(Words.decode(wire), { arrays: true }));
});

test('a packed run cut short, or running past its message, is refused', () => {
  const wire = Buffer.from(Words.encode(Words.fromObject({ u: [300, 301, 302] })).finish());
  // the run's length says 6 bytes; cut the message inside the run
  assert.throws(() => decodeMessage(wire.subarray(0, wire.length - 1), Words), /^.*not a valid Words: /);
  // a multi-byte value whose last byte lies past the run's end
  const broken = Buffer.from([(1 << 3) | 2, 2, 0xac, 0x82, 0x02]);
  assert.throws(() => decodeMessage(broken, Words), /not a valid Words: packed u runs 1 bytes past its end/);
});
