import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parkingFrame, Registers } from '@amber/core';

// A parking frame's FPU part, as the kernel's sigreturn checks it: the XSAVE area at offset 1024
// of the frame, struct _fpx_sw_bytes in its sw_reserved (byte 464: magic1, extended_size,
// xfeatures, xstate_size), and magic2 right after the area.
const FPSTATE = 1024;
const SW = FPSTATE + 464;
const MAGIC2 = 0x46505845;
const XTILE_DATA = 1n << 18n;
// x87, SSE, AVX, AVX-512 (opmask, ZMM_Hi256, Hi16_ZMM), PKRU, and AMX's XTILECFG + XTILEDATA
const XCR0_AMX = 0x602e7n;
const AMX_AREA = 11008; // this machine's NT_X86_XSTATE size: the tile data is its last 8 KiB

function xstate(length: number, xcr0: bigint, xstateBv: bigint): Buffer {
  const x = Buffer.alloc(length, 0x5a);
  x.writeBigUInt64LE(xcr0, 464); // ptrace leaves XCR0 in sw_reserved
  x.writeBigUInt64LE(xstateBv, 512); // the XSAVE header's xstate_bv
  return x;
}

function swBytes(frame: Buffer): { extended: number; xfeatures: bigint; size: number } {
  return { extended: frame.readUInt32LE(SW + 4), xfeatures: frame.readBigUInt64LE(SW + 8), size: frame.readUInt32LE(SW + 16) };
}

test('a task that never used AMX tiles: the frame names its area without the 8 KiB of tile data', () => {
  const { frame } = parkingFrame(0x10000n, new Registers(), xstate(AMX_AREA, XCR0_AMX, 0x2e7n), 0n);
  const sw = swBytes(frame);
  assert.equal(sw.size, AMX_AREA - 8192);
  assert.equal(sw.extended, AMX_AREA - 8192 + 4);
  assert.equal(sw.xfeatures, XCR0_AMX & ~XTILE_DATA);
  assert.equal(frame.readUInt32LE(FPSTATE + sw.size), MAGIC2);
});

test('a task whose tiles are in use, or a CPU without AMX: the whole area and XCR0', () => {
  const inUse = swBytes(parkingFrame(0x10000n, new Registers(), xstate(AMX_AREA, XCR0_AMX, 0x602e7n), 0n).frame);
  assert.deepEqual(inUse, { extended: AMX_AREA + 4, xfeatures: XCR0_AMX, size: AMX_AREA });
  const noAmx = parkingFrame(0x10000n, new Registers(), xstate(2696, 0x2e7n, 0x2e7n), 0n).frame;
  assert.deepEqual(swBytes(noAmx), { extended: 2700, xfeatures: 0x2e7n, size: 2696 });
  assert.equal(noAmx.readUInt32LE(FPSTATE + 2696), MAGIC2);
});
