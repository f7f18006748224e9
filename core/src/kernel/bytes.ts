/**
 * Little-endian fields of kernel structs in Buffers, for the hot paths (registers, call tables,
 * signal frames, ioctl arguments). Node's own Buffer.readUInt32LE(offset) and friends validate
 * their offset through a wrapper that allocates its arguments, and the 64-bit ones build the
 * value from several BigInts: without TurboFan (cli/bin/run.js) nothing removes that, and it was
 * a sixth of what a 50-task tree's dump allocated. Here 32 bits and less are plain arithmetic,
 * and 64 bits go through one 8-byte scratch with a DataView, so a read allocates only its BigInt.
 * (A DataView kept per Buffer would allocate less still, but a WeakMap of them cost ~6 MB of
 * peak RSS in a tree's dump: most Buffers are small, each with its own ArrayBuffer.)
 */

const scratch = new Uint8Array(8);
const scratchView = new DataView(scratch.buffer);

function check(buf: Uint8Array, offset: number, size: number): void {
  if (!(offset >= 0 && offset + size <= buf.length)) throw new RangeError(`offset ${offset} + ${size} is outside a buffer of ${buf.length} bytes`);
}

function load(buf: Uint8Array, offset: number): void {
  check(buf, offset, 8);
  for (let i = 0; i < 8; i++) scratch[i] = buf[offset + i];
}

function store(buf: Uint8Array, offset: number): void {
  for (let i = 0; i < 8; i++) buf[offset + i] = scratch[i];
}

export function readU64(buf: Uint8Array, offset: number): bigint {
  load(buf, offset);
  return scratchView.getBigUint64(0, true);
}

export function readI64(buf: Uint8Array, offset: number): bigint {
  load(buf, offset);
  return scratchView.getBigInt64(0, true);
}

/** Writes the low 64 bits of value (a negative one as its two's complement, as asUintN would). */
export function writeU64(buf: Uint8Array, offset: number, value: bigint): void {
  check(buf, offset, 8);
  scratchView.setBigUint64(0, value, true);
  store(buf, offset);
}

export function readU32(buf: Uint8Array, offset: number): number {
  check(buf, offset, 4);
  return (buf[offset] | (buf[offset + 1] << 8) | (buf[offset + 2] << 16)) + buf[offset + 3] * 0x1000000;
}

export function readI32(buf: Uint8Array, offset: number): number {
  check(buf, offset, 4);
  return buf[offset] | (buf[offset + 1] << 8) | (buf[offset + 2] << 16) | (buf[offset + 3] << 24);
}

/** Writes the low 32 bits of value. */
export function writeU32(buf: Uint8Array, offset: number, value: number): void {
  check(buf, offset, 4);
  buf[offset] = value;
  buf[offset + 1] = value >>> 8;
  buf[offset + 2] = value >>> 16;
  buf[offset + 3] = value >>> 24;
}

export function readU16(buf: Uint8Array, offset: number): number {
  check(buf, offset, 2);
  return buf[offset] | (buf[offset + 1] << 8);
}

/** `count` u32 words from offset on. */
export function readU32s(buf: Uint8Array, offset: number, count: number): number[] {
  check(buf, offset, count * 4);
  // aligned (most are: Buffer.alloc's, node's pool slices): one copy by the builtin
  if (((buf.byteOffset + offset) & 3) === 0) return Array.from(new Uint32Array(buf.buffer, buf.byteOffset + offset, count));
  const out = new Array<number>(count);
  for (let i = 0, o = offset; i < count; i++, o += 4) out[i] = (buf[o] | (buf[o + 1] << 8) | (buf[o + 2] << 16)) + buf[o + 3] * 0x1000000;
  return out;
}

/**
 * buf's bytes as 64-bit words, for the loops over tables and register sets: a store into a typed
 * array is one step of the interpreter, where writeU64 is a call and a copy (measured, no
 * TurboFan: ~37 ns a word instead of ~260). A view where buf is 8-byte aligned (Buffer.alloc's
 * always are), else a view of a copy: then only for reading.
 */
export function u64Words(buf: Uint8Array): BigUint64Array {
  const bytes = (buf.byteOffset & 7) === 0 ? buf : Uint8Array.from(buf);
  return new BigUint64Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 3);
}

/** u64Words, signed: the kernel's -errno and -1. */
export function i64Words(buf: Uint8Array): BigInt64Array {
  const bytes = (buf.byteOffset & 7) === 0 ? buf : Uint8Array.from(buf);
  return new BigInt64Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 3);
}
