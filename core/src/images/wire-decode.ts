/**
 * Protobuf wire -> amber message object in one pass: bigint for every 64-bit field, arrays for
 * every repeated field (empty when absent), Buffers for bytes (views of the image), only present
 * fields set. protobufjs's own decoder made a Long per 64-bit value (two objects, then three
 * BigInt operations to turn it into a bigint), compiled a decoder per type on first use, and
 * left a message whose every field fromWire then walked and copied again.
 *
 * The reading is amber's own, on a cursor over the bytes, with the varints inline: a restore
 * decodes every thread's core (~170 packed register words, 64 sigactions for a leader) before it
 * makes a task, and without TurboFan (cli/bin/run.js) each method call per value is paid in full.
 * Measured on the 50 x 4 tree's images, decoding alone: 200 cores in ~27 ms on protobufjs's Reader, ~22 ms here.
 */
import type * as protobuf from 'protobufjs';
import { SchemaError } from './errors';
import { Code, CODE, kindOf, WIRE } from './wire-kinds';

interface FieldPlan {
  name: string;
  code: Code;
  repeated: boolean;
  /** the wire type of one value (0 varint, 1 64-bit, 2 length-delimited, 5 32-bit) */
  wire: number;
  /** a message field's type and its plan, made when first decoded */
  message?: protobuf.Type;
  messagePlan?: TypePlan;
}

interface TypePlan {
  name: string;
  /** by field number: small in every schema amber reads, so an array */
  byId: (FieldPlan | undefined)[];
  /** the names of its repeated fields, each an empty array in a fresh message */
  repeated: string[];
  required: string[];
}

const plans = new WeakMap<protobuf.Type, TypePlan>();

function planOf(type: protobuf.Type): TypePlan {
  let plan = plans.get(type);
  if (plan) return plan;
  plan = { name: type.name, byId: [], repeated: [], required: [] };
  for (const f of type.fieldsArray) {
    const kind = kindOf(type, f);
    const message = kind === 'message' ? (f.resolvedType as protobuf.Type) : undefined;
    plan.byId[f.id] = { name: f.name, code: CODE[kind], repeated: f.repeated, wire: WIRE[kind], message };
    if (f.repeated) plan.repeated.push(f.name);
    if (f.required) plan.required.push(f.name);
  }
  plans.set(type, plan);
  return plan;
}

/** Where the decoding is in the bytes. */
interface Cursor {
  buf: Buffer;
  pos: number;
}

const TWO32 = 0x100000000;
/** The bigints of one-byte varints: most 64-bit fields of a core (empty sigactions, segment registers) are 0 or small. */
const SMALL = Array.from({ length: 128 }, (_, i) => BigInt(i));

function outOfRange(c: Cursor, need: number): RangeError {
  return new RangeError(`index out of range: ${c.pos} + ${need} > ${c.buf.length}`);
}

/** A varint's low 32 bits, as an unsigned number; its higher bytes are skipped (an int32 of -1 takes ten). */
function varint32(c: Cursor): number {
  const buf = c.buf;
  let pos = c.pos;
  let n = 0;
  for (let shift = 0; shift < 70; shift += 7) {
    if (pos >= buf.length) throw outOfRange(c, 1);
    const b = buf[pos++];
    if (shift < 28) n |= (b & 0x7f) << shift;
    else if (shift === 28) n |= (b & 0x0f) << 28;
    if (b < 0x80) {
      c.pos = pos;
      return n >>> 0;
    }
  }
  throw new RangeError('invalid varint encoding');
}

/** A varint of up to 64 bits, exact. Up to 7 bytes (49 bits) stays in a double. */
function varint64(c: Cursor): bigint {
  const buf = c.buf;
  let pos = c.pos;
  if (pos < buf.length && buf[pos] < 0x80) {
    c.pos = pos + 1;
    return SMALL[buf[pos]];
  }
  let n = 0;
  let scale = 1;
  for (let i = 0; i < 7; i++) {
    if (pos >= buf.length) throw outOfRange(c, 1);
    const b = buf[pos++];
    n += (b & 0x7f) * scale;
    if (b < 0x80) {
      c.pos = pos;
      return BigInt(n);
    }
    scale *= 128;
  }
  let big = BigInt(n);
  for (let shift = 49n; shift < 70n; shift += 7n) {
    if (pos >= buf.length) throw outOfRange(c, 1);
    const b = buf[pos++];
    big |= BigInt(b & 0x7f) << shift;
    if (b < 0x80) {
      c.pos = pos;
      return BigInt.asUintN(64, big);
    }
  }
  throw new RangeError('invalid varint encoding');
}

function take(c: Cursor, n: number): number {
  const at = c.pos;
  if (at + n > c.buf.length) throw outOfRange(c, n);
  c.pos = at + n;
  return at;
}

function fixed64(c: Cursor): bigint {
  const at = take(c, 8);
  const lo = c.buf.readUInt32LE(at);
  const hi = c.buf.readUInt32LE(at + 4);
  return hi === 0 ? BigInt(lo) : BigInt(hi) * BigInt(TWO32) + BigInt(lo);
}

/** A length-delimited value's start; the cursor goes past it. */
function delimited(c: Cursor): number {
  const len = varint32(c);
  return take(c, len);
}

function skip(c: Cursor, wire: number): void {
  switch (wire) {
    case 0: varint32(c); return;
    case 1: take(c, 8); return;
    case 2: delimited(c); return;
    case 3:
      // a group: skipped to its end tag
      for (;;) {
        const tag = varint32(c);
        if ((tag & 7) === 4) return;
        skip(c, tag & 7);
      }
    case 5: take(c, 4); return;
    default: throw new RangeError(`invalid wire type ${wire} at offset ${c.pos}`);
  }
}

function value(c: Cursor, f: FieldPlan): unknown {
  switch (f.code) {
    case Code.int32: case Code.enum: return varint32(c) | 0;
    case Code.uint32: return varint32(c);
    case Code.sint32: {
      const z = varint32(c);
      return (z >>> 1) ^ -(z & 1);
    }
    case Code.fixed32: return c.buf.readUInt32LE(take(c, 4));
    case Code.sfixed32: return c.buf.readInt32LE(take(c, 4));
    case Code.bool: return varint32(c) !== 0;
    case Code.uint64: return varint64(c);
    case Code.int64: return BigInt.asIntN(64, varint64(c));
    case Code.sint64: {
      const z = varint64(c);
      return (z >> 1n) ^ -(z & 1n);
    }
    case Code.fixed64: return fixed64(c);
    case Code.sfixed64: return BigInt.asIntN(64, fixed64(c));
    case Code.double: return c.buf.readDoubleLE(take(c, 8));
    case Code.float: return c.buf.readFloatLE(take(c, 4));
    case Code.string: {
      const at = delimited(c);
      return c.buf.toString('utf8', at, c.pos);
    }
    case Code.bytes: {
      const at = delimited(c);
      return c.buf.subarray(at, c.pos);
    }
    case Code.message: {
      const len = varint32(c);
      return decodeFrom(c, (f.messagePlan ??= planOf(f.message as protobuf.Type)), c.pos + len);
    }
  }
}

/**
 * A packed run of values up to stop, into list. uint32 (the register words of a core) has its
 * own loop: one-byte values, most of them, take no call at all.
 */
function packed(c: Cursor, f: FieldPlan, list: unknown[], stop: number): void {
  if (stop > c.buf.length) throw outOfRange(c, stop - c.pos);
  if (f.code === Code.uint32) {
    const buf = c.buf;
    while (c.pos < stop) {
      const b = buf[c.pos];
      if (b < 0x80) {
        list.push(b);
        c.pos++;
      } else list.push(varint32(c));
    }
  } else while (c.pos < stop) list.push(value(c, f));
  if (c.pos !== stop) throw new RangeError(`packed ${f.name} runs ${c.pos - stop} bytes past its end`);
}

function decodeFrom(c: Cursor, plan: TypePlan, end: number): Record<string, unknown> {
  if (end > c.buf.length) throw new RangeError(`index out of range: ${end} > ${c.buf.length}`);
  const out: Record<string, unknown> = {};
  // indexed loops: without TurboFan (cli/bin/run.js) a for-of allocates per element
  for (let k = 0; k < plan.repeated.length; k++) out[plan.repeated[k]] = [];
  const buf = c.buf;
  while (c.pos < end) {
    // a one-byte tag (field numbers below 16), most of them, read inline
    const first = buf[c.pos];
    let tag: number;
    if (first < 0x80) {
      tag = first;
      c.pos++;
    } else tag = varint32(c);
    const wire = tag & 7;
    const f = plan.byId[tag >>> 3];
    if (!f) {
      skip(c, wire);
      continue;
    }
    if (f.repeated) {
      const list = out[f.name] as unknown[];
      if (wire === 2 && f.wire !== 2) {
        // packed: a run of values in one length-delimited field
        const len = varint32(c);
        packed(c, f, list, c.pos + len);
        continue;
      }
      if (wire !== f.wire) throw new RangeError(`invalid wire type ${wire} for ${f.name}`);
      list.push(value(c, f));
    } else {
      if (wire !== f.wire) throw new RangeError(`invalid wire type ${wire} for ${f.name}`);
      out[f.name] = value(c, f);
    }
  }
  if (c.pos !== end) throw new RangeError(`${plan.name} runs ${c.pos - end} bytes past its end`);
  for (let k = 0; k < plan.required.length; k++) {
    if (out[plan.required[k]] === undefined) throw new RangeError(`missing required '${plan.required[k]}'`);
  }
  return out;
}

/** Decodes one message of `type` from the whole of `buf`. */
export function decodeWire(buf: Buffer, type: protobuf.Type): Record<string, unknown> {
  try {
    return decodeFrom({ buf, pos: 0 }, planOf(type), buf.length);
  } catch (e) {
    if (e instanceof SchemaError) throw e;
    throw new SchemaError(`not a valid ${type.name}: ${(e as Error).message}`);
  }
}
