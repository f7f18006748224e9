/**
 * Fill CRIU's field-by-field FPU message from a raw NT_X86_XSTATE buffer
 * (what PTRACE_GETREGSET returns), so decoders show real values. amber
 * itself restores from the raw buffer (ThreadInfoX86.xsaveRaw); an image
 * without one (CRIU's) is turned back into a buffer by xsaveFromFpregs.
 *
 * Layout (standard, non-compacted XSAVE format, little-endian):
 *   0    u16 fcw, u16 fsw, u16 ftw (abridged tag in the low byte), u16 fop
 *   8    u64 rip, 16 u64 rdp, 24 u32 mxcsr, 28 u32 mxcsr_mask
 *   32   st0..st7, 16 bytes each      160  xmm0..xmm15, 16 bytes each
 *   416  48 reserved bytes            464  48 bytes of software-reserved data
 *   512  XSAVE header: u64 xstate_bv, u64 xcomp_bv, ...
 *   576  upper 128 bits of ymm0..ymm15 (AVX component; fixed offset)
 */
import { readU16, readU32, readU32s, readU64 } from '../kernel/bytes';
import { ImageError } from './errors';
import type { UserX86FpregsEntry, UserX86XsaveEntry } from './types';

const FXSAVE_SIZE = 512;
const XSAVE_HDR_END = 576;
const YMMH_OFFSET = 576;
const YMMH_WORDS = 64;

export function fpregsFromXsave(raw: Buffer): UserX86FpregsEntry {
  if (raw.length < FXSAVE_SIZE) {
    throw new ImageError(`xsave buffer of ${raw.length} bytes is shorter than the ${FXSAVE_SIZE}-byte FXSAVE area`);
  }
  const entry: UserX86FpregsEntry = {
    cwd: readU16(raw, 0),
    swd: readU16(raw, 2),
    twd: readU16(raw, 4),
    fop: readU16(raw, 6),
    rip: readU64(raw, 8),
    rdp: readU64(raw, 16),
    mxcsr: readU32(raw, 24),
    mxcsrMask: readU32(raw, 28),
    stSpace: readU32s(raw, 32, 32),
    xmmSpace: readU32s(raw, 160, 64),
    padding: readU32s(raw, 416, 12),
  };
  if (raw.length >= XSAVE_HDR_END) {
    const xsave: UserX86XsaveEntry = {
      xstateBv: readU64(raw, FXSAVE_SIZE),
      ymmhSpace: raw.length >= YMMH_OFFSET + YMMH_WORDS * 4 ? readU32s(raw, YMMH_OFFSET, YMMH_WORDS) : [],
      bndregState: [],
      bndcsrState: [],
      opmaskReg: [],
      zmmUpper: [],
      hi16Zmm: [],
      pkru: [],
    };
    entry.xsave = xsave;
  }
  return entry;
}

function putWords(buf: Buffer, offset: number, values: number[], count: number): void {
  for (let i = 0; i < Math.min(values.length, count); i++) buf.writeUInt32LE(values[i] >>> 0, offset + i * 4);
}

/**
 * The NT_X86_XSTATE buffer for CRIU's field-by-field FPU message: the legacy area, xstate_bv and
 * the AVX upper halves written over `template` (the thread's own current buffer, which gives the
 * kernel's size and layout; components CRIU's message has no field for keep its values).
 */
export function xsaveFromFpregs(fp: UserX86FpregsEntry, template: Buffer): Buffer {
  if (template.length < FXSAVE_SIZE) throw new ImageError(`xsave buffer of ${template.length} bytes is shorter than the ${FXSAVE_SIZE}-byte FXSAVE area`);
  const raw = Buffer.from(template);
  raw.writeUInt16LE(fp.cwd & 0xffff, 0);
  raw.writeUInt16LE(fp.swd & 0xffff, 2);
  raw.writeUInt16LE(fp.twd & 0xffff, 4);
  raw.writeUInt16LE(fp.fop & 0xffff, 6);
  raw.writeBigUInt64LE(fp.rip, 8);
  raw.writeBigUInt64LE(fp.rdp, 16);
  raw.writeUInt32LE(fp.mxcsr >>> 0, 24);
  raw.writeUInt32LE(fp.mxcsrMask >>> 0, 28);
  putWords(raw, 32, fp.stSpace, 32);
  putWords(raw, 160, fp.xmmSpace, 64);
  if (fp.xsave && raw.length >= XSAVE_HDR_END) {
    // x87 and SSE (bits 0, 1) are always taken from the legacy area just written
    raw.writeBigUInt64LE(fp.xsave.xstateBv | 3n, FXSAVE_SIZE);
    if (raw.length >= YMMH_OFFSET + YMMH_WORDS * 4) putWords(raw, YMMH_OFFSET, fp.xsave.ymmhSpace, YMMH_WORDS);
  }
  return raw;
}
