import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readI32, readI64, readU16, readU32, readU32s, readU64, writeU32, writeU64 } from '@amber/core';

// The helpers must read and write exactly what Buffer's own methods do, at any offset of a Buffer
// that is a view into a larger (pooled) ArrayBuffer.
const U64S = [0n, 1n, 0x7fn, 0x80n, 0xffffffffn, 0x100000000n, 0x7fffffffffffffffn, 0x8000000000000000n, 0xfffffffffffffffen, 0xffffffffffffffffn];
const U32S = [0, 1, 0x7f, 0xff, 0x100, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];

function pooledView(size: number): Buffer {
  const big = Buffer.alloc(size + 40, 0xa5);
  return big.subarray(13, 13 + size);
}

test('64-bit reads and writes match Buffer at every offset of a view', () => {
  const buf = pooledView(24);
  for (const v of U64S) {
    for (let off = 0; off <= 16; off++) {
      buf.fill(0);
      writeU64(buf, off, v);
      assert.equal(buf.readBigUInt64LE(off), v, `writeU64 ${v} at ${off}`);
      assert.equal(readU64(buf, off), v);
      assert.equal(readI64(buf, off), buf.readBigInt64LE(off));
    }
  }
  // a negative value is written as its two's complement, as BigInt.asUintN(64, v) would be
  writeU64(buf, 0, -4n);
  assert.equal(buf.readBigUInt64LE(0), 0xfffffffffffffffcn);
  assert.equal(readI64(buf, 0), -4n);
});

test('32- and 16-bit reads and writes match Buffer', () => {
  const buf = pooledView(12);
  for (const v of U32S) {
    for (let off = 0; off <= 8; off++) {
      buf.fill(0);
      writeU32(buf, off, v);
      assert.equal(buf.readUInt32LE(off), v, `writeU32 ${v} at ${off}`);
      assert.equal(readU32(buf, off), v);
      assert.equal(readI32(buf, off), buf.readInt32LE(off));
      assert.equal(readU16(buf, off), buf.readUInt16LE(off));
    }
  }
  const words = Buffer.alloc(16);
  U32S.slice(-4).forEach((v, i) => words.writeUInt32LE(v, i * 4));
  assert.deepEqual(readU32s(words, 0, 4), U32S.slice(-4));
  assert.deepEqual(readU32s(words, 8, 2), U32S.slice(-2));
});

test('an access past the end of the Buffer throws, even inside a larger ArrayBuffer, and writes nothing', () => {
  const big = Buffer.alloc(32, 0x11);
  const buf = big.subarray(8, 16);
  assert.throws(() => writeU64(buf, 1, 5n), RangeError);
  assert.throws(() => writeU32(buf, 5, 5), RangeError);
  assert.throws(() => readU64(buf, 1), RangeError);
  assert.throws(() => readU32(buf, -1), RangeError);
  assert.throws(() => readU32s(buf, 0, 3), RangeError);
  assert.ok(big.every((b) => b === 0x11), 'the bytes around the view were not touched');
});
