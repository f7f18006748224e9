import assert from 'node:assert/strict';
import { test } from 'node:test';
import { i64Words, readI32, readI64, readU16, readU32, readU32s, readU64, u64Words, writeU32, writeU64 } from '@amber/core';

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

test('word views: u32 runs, u64 and i64 words read what Buffer reads, aligned or not; a store through an aligned view lands in the Buffer', () => {
  const big = Buffer.alloc(96);
  for (let i = 0; i < big.length; i++) big[i] = (i * 37 + 11) & 0xff;
  for (let start = 0; start < 8; start++) {
    const buf = big.subarray(start, start + 64);
    for (let off = 0; off <= 8; off++) {
      assert.deepEqual(readU32s(buf, off, 5), Array.from({ length: 5 }, (_, i) => buf.readUInt32LE(off + i * 4)), `readU32s at ${start}+${off}`);
    }
    const u = u64Words(buf);
    const s = i64Words(buf);
    assert.equal(u.length, 8);
    for (let i = 0; i < 8; i++) {
      assert.equal(u[i], buf.readBigUInt64LE(i * 8), `u64Words[${i}] of a view at ${start}`);
      assert.equal(s[i], buf.readBigInt64LE(i * 8));
    }
  }
  const table = Buffer.alloc(32);
  const words = u64Words(table);
  words[1] = -2n;
  words[2] = 0x1234n;
  assert.equal(table.readBigUInt64LE(8), 0xfffffffffffffffen, 'a negative store is its two\'s complement');
  assert.equal(table.readBigUInt64LE(16), 0x1234n);
  assert.equal(i64Words(table)[1], -2n);
});
