/**
 * amber message object -> protobuf wire in one pass, checked on the way: a wrong type, an
 * out-of-range integer, a field its type does not declare or a missing required field is a
 * SchemaError naming the field, and nothing reaches the disk (CRIU's decoders reject such a
 * file outright). The bytes are those protobufjs writes (fields by number, proto2 `packed` only
 * where declared). protobufjs's own path copied every message into a plain object with a Long per
 * 64-bit value, then ran an encoder it compiled per type on first use: at a tree's hundreds of
 * small images that was most of the image time.
 */
import * as protobuf from 'protobufjs';
import { SchemaError } from './errors';
import { Code, CODE, kindOf, WIRE, type Kind } from './wire-kinds';

interface FieldPlan {
  name: string;
  kind: Kind;
  code: Code;
  repeated: boolean;
  packed: boolean;
  /** the field's key as written before each value: (number << 3) | wire type */
  tag: number;
  message?: protobuf.Type;
  /** a message field's type's plan, made when first written */
  messagePlan?: TypePlan;
}

interface TypePlan {
  name: string;
  /** by field number, the order protobufjs writes them in */
  fields: FieldPlan[];
  byName: Map<string, FieldPlan>;
  required: string[];
}

const plans = new WeakMap<protobuf.Type, TypePlan>();

function planOf(type: protobuf.Type): TypePlan {
  let plan = plans.get(type);
  if (plan) return plan;
  plan = { name: type.name, fields: [], byName: new Map(), required: [] };
  for (const f of [...type.fieldsArray].sort((a, b) => a.id - b.id)) {
    const kind = kindOf(type, f);
    const packed = f.repeated && f.packed && WIRE[kind] !== 2;
    const fp: FieldPlan = {
      name: f.name, kind, code: CODE[kind], repeated: f.repeated, packed,
      tag: ((f.id << 3) | (packed ? 2 : WIRE[kind])) >>> 0,
      message: kind === 'message' ? (f.resolvedType as protobuf.Type) : undefined,
    };
    plan.fields.push(fp);
    plan.byName.set(f.name, fp);
    if (f.required) plan.required.push(f.name);
  }
  plans.set(type, plan);
  return plan;
}

const TWO64 = 1n << 64n;
const TWO63 = 1n << 63n;
const U32_MAX = 0xffffffff;

/** A growing byte buffer; a submessage is written in place and its length put in front after. */
class Writer {
  buf = Buffer.allocUnsafe(256);
  pos = 0;

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** An unsigned 32-bit varint. */
  u32(v: number): void {
    this.ensure(5);
    const b = this.buf;
    while (v > 0x7f) {
      b[this.pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    b[this.pos++] = v;
  }

  /** A varint of the 64-bit pattern `v` (0 <= v < 2^64). */
  u64(v: bigint): void {
    if (v <= 0xffffffffn) return this.u32(Number(v));
    this.ensure(10);
    let lo = Number(v & 0xffffffffn);
    let hi = Number(v >> 32n);
    const b = this.buf;
    // 28 bits of lo in four bytes, then lo's top 4 bits with hi's low 3, then the rest of hi
    for (let i = 0; i < 4; i++) {
      b[this.pos++] = (lo & 0x7f) | 0x80;
      lo >>>= 7;
    }
    const fifth = lo | ((hi & 0x7) << 4);
    hi >>>= 3;
    if (hi === 0) {
      b[this.pos++] = fifth;
      return;
    }
    b[this.pos++] = fifth | 0x80;
    while (hi > 0x7f) {
      b[this.pos++] = (hi & 0x7f) | 0x80;
      hi >>>= 7;
    }
    b[this.pos++] = hi;
  }

  fixed32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(v >>> 0, this.pos);
    this.pos += 4;
  }

  fixed64(v: bigint): void {
    this.ensure(8);
    this.buf.writeBigUInt64LE(v, this.pos);
    this.pos += 8;
  }

  double(v: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }

  float(v: number): void {
    this.ensure(4);
    this.buf.writeFloatLE(v, this.pos);
    this.pos += 4;
  }

  bytes(v: Uint8Array): void {
    this.u32(v.length);
    this.ensure(v.length);
    this.buf.set(v, this.pos);
    this.pos += v.length;
  }

  string(v: string): void {
    const n = Buffer.byteLength(v);
    this.u32(n);
    this.ensure(n);
    this.pos += this.buf.write(v, this.pos, 'utf8');
  }

  /** Puts the varint length of everything written since `start` in front of it. */
  closeLength(start: number): void {
    const len = this.pos - start;
    let size = 1;
    for (let v = len; v > 0x7f; v >>>= 7) size++;
    this.ensure(size);
    this.buf.copyWithin(start + size, start, this.pos);
    const end = this.pos + size;
    this.pos = start;
    this.u32(len);
    this.pos = end;
  }
}

/**
 * Where a value is, for an error: prefix + field name (+ [index] in a repeated field, index >= 0).
 * Built only when something is wrong: a dump's images hold tens of thousands of values.
 */
function at(prefix: Prefix, f: FieldPlan, index: number): string {
  return index < 0 ? `${prefix ?? ''}${f.name}` : `${prefix ?? ''}${f.name}[${index}]`;
}

/**
 * The path of the message being written ("tc.sigactions[3]."), for an error; undefined while it
 * is not tracked: encodeWire writes without building one per submessage (a leader's core holds 64
 * sigactions), and only when that fails writes again with paths, for the error to name the place.
 */
type Prefix = string | undefined;

function int32In(v: unknown, lo: number, hi: number, prefix: Prefix, f: FieldPlan, index: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) throw new SchemaError(`${at(prefix, f, index)}: expected a 32-bit integer, got ${String(v)}`);
  return v;
}

function bigintIn(v: unknown, signed: boolean, prefix: Prefix, f: FieldPlan, index: number): bigint {
  if (typeof v !== 'bigint') throw new SchemaError(`${at(prefix, f, index)}: expected a bigint (64-bit field), got ${typeof v}`);
  const ok = signed ? v >= -TWO63 && v < TWO63 : v >= 0n && v < TWO64;
  if (!ok) throw new SchemaError(`${at(prefix, f, index)}: ${v} does not fit ${signed ? 'a signed' : 'an unsigned'} 64-bit field`);
  return v;
}

/** One value of f, without its key; prefix and index say where it is (at()). */
function writeValue(w: Writer, f: FieldPlan, v: unknown, prefix: Prefix, index: number): void {
  switch (f.code) {
    case Code.int32:
    case Code.enum: {
      const n = int32In(v, -0x80000000, 0x7fffffff, prefix, f, index);
      // a negative int32 is written as the 64-bit varint of its sign extension (ten bytes)
      if (n < 0) w.u64(BigInt.asUintN(64, BigInt(n)));
      else w.u32(n);
      return;
    }
    case Code.uint32:
      return w.u32(int32In(v, 0, U32_MAX, prefix, f, index));
    case Code.sint32: {
      const n = int32In(v, -0x80000000, 0x7fffffff, prefix, f, index);
      return w.u32(((n << 1) ^ (n >> 31)) >>> 0);
    }
    case Code.fixed32:
      return w.fixed32(int32In(v, 0, U32_MAX, prefix, f, index));
    case Code.sfixed32:
      return w.fixed32(int32In(v, -0x80000000, 0x7fffffff, prefix, f, index));
    case Code.bool:
      if (typeof v !== 'boolean') throw new SchemaError(`${at(prefix, f, index)}: expected a boolean`);
      return w.u32(v ? 1 : 0);
    case Code.uint64:
      return w.u64(bigintIn(v, false, prefix, f, index));
    case Code.int64:
      return w.u64(BigInt.asUintN(64, bigintIn(v, true, prefix, f, index)));
    case Code.sint64: {
      const n = bigintIn(v, true, prefix, f, index);
      return w.u64(BigInt.asUintN(64, (n << 1n) ^ (n >> 63n)));
    }
    case Code.fixed64:
      return w.fixed64(bigintIn(v, false, prefix, f, index));
    case Code.sfixed64:
      return w.fixed64(BigInt.asUintN(64, bigintIn(v, true, prefix, f, index)));
    case Code.double:
    case Code.float:
      if (typeof v !== 'number') throw new SchemaError(`${at(prefix, f, index)}: expected a number`);
      return f.code === Code.double ? w.double(v) : w.float(v);
    case Code.string:
      if (typeof v !== 'string') throw new SchemaError(`${at(prefix, f, index)}: expected a string`);
      return w.string(v);
    case Code.bytes:
      if (!(v instanceof Uint8Array)) throw new SchemaError(`${at(prefix, f, index)}: expected a Buffer`);
      return w.bytes(v);
    case Code.message: {
      if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) {
        throw new SchemaError(`${at(prefix, f, index)}: expected a ${f.message!.name} object`);
      }
      const start = w.pos;
      writeMessage(w, v as Record<string, unknown>, (f.messagePlan ??= planOf(f.message!)), prefix === undefined ? undefined : `${at(prefix, f, index)}.`);
      w.closeLength(start);
    }
  }
}

/**
 * A repeated uint32 field, unpacked (CRIU's register arrays: 172 values per thread's FPU state):
 * the generic path's calls per value cost a 50 x 4 tree's dump ~20 ms in the interpreter (amber
 * runs without TurboFan), so this loop writes key and value bytes itself, room made once.
 */
function writeUint32s(w: Writer, f: FieldPlan, v: unknown[], prefix: Prefix): void {
  let tagSize = 1;
  for (let t = f.tag; t > 0x7f; t >>>= 7) tagSize++;
  w.ensure(v.length * (tagSize + 5));
  const b = w.buf;
  let pos = w.pos;
  for (let i = 0; i < v.length; i++) {
    let x = v[i];
    if (typeof x !== 'number' || x >>> 0 !== x) {
      w.pos = pos;
      return void int32In(x, 0, U32_MAX, prefix, f, i);
    }
    for (let t = f.tag; ; t >>>= 7) {
      if (t <= 0x7f) {
        b[pos++] = t;
        break;
      }
      b[pos++] = (t & 0x7f) | 0x80;
    }
    while (x > 0x7f) {
      b[pos++] = (x & 0x7f) | 0x80;
      x >>>= 7;
    }
    b[pos++] = x;
  }
  w.pos = pos;
}

// The loops here index their arrays: amber runs without TurboFan (cli/bin/run.js), and in the
// interpreter a for-of allocates an iterator result per element (most of a dump's garbage).
function writeMessage(w: Writer, obj: Record<string, unknown>, plan: TypePlan, prefix: Prefix): void {
  const fields = plan.fields;
  let present = 0;
  for (let k = 0; k < fields.length; k++) {
    const f = fields[k];
    const v = obj[f.name];
    if (v === undefined) continue;
    present++;
    if (v === null) continue;
    if (!f.repeated) {
      w.u32(f.tag);
      writeValue(w, f, v, prefix, -1);
      continue;
    }
    if (!Array.isArray(v)) throw new SchemaError(`${at(prefix, f, -1)}: expected an array`);
    if (v.length === 0) continue;
    if (f.packed) {
      w.u32(f.tag);
      const start = w.pos;
      for (let i = 0; i < v.length; i++) writeValue(w, f, v[i], prefix, i);
      w.closeLength(start);
      continue;
    }
    if (f.code === Code.uint32) {
      writeUint32s(w, f, v, prefix);
      continue;
    }
    for (let i = 0; i < v.length; i++) {
      w.u32(f.tag);
      writeValue(w, f, v[i], prefix, i);
    }
  }
  for (let k = 0; k < plan.required.length; k++) {
    const name = plan.required[k];
    if (obj[name] === undefined || obj[name] === null) throw new SchemaError(`missing required field ${prefix ?? ''}${name} (${plan.name})`);
  }
  // a key the type does not declare: every declared one set was counted, so only then are there
  // more keys than that (a for-in over every message's keys cost more than the encoding itself)
  if (Object.keys(obj).length !== present) {
    for (const key in obj) {
      if (obj[key] !== undefined && !plan.byName.has(key)) throw new SchemaError(`${prefix ?? ''}${key}: ${plan.name} has no such field`);
    }
  }
}

/** Encodes one message of `type`; the Buffer is a view of the writer's own memory. */
export function encodeWire(obj: object, type: protobuf.Type): Buffer {
  const plan = planOf(type);
  const w = new Writer();
  try {
    writeMessage(w, obj as Record<string, unknown>, plan, undefined);
  } catch (e) {
    if (!(e instanceof SchemaError)) throw e;
    // again, with the paths, for an error that names where it is
    writeMessage(new Writer(), obj as Record<string, unknown>, plan, '');
    throw e;
  }
  return w.buf.subarray(0, w.pos);
}
