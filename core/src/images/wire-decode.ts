/**
 * Protobuf wire -> amber message object in one pass: bigint for every 64-bit field, arrays for
 * every repeated field (empty when absent), Buffers for bytes (views of the image), only present
 * fields set. protobufjs's own decoder made a Long per 64-bit value (two objects, then three
 * BigInt operations to turn it into a bigint), compiled a decoder per type on first use, and
 * left a message whose every field fromWire then walked and copied again.
 */
import * as protobuf from 'protobufjs';
import { SchemaError } from './errors';
import { Code, CODE, kindOf, WIRE, type Kind } from './wire-kinds';

interface FieldPlan {
  name: string;
  kind: Kind;
  code: Code;
  repeated: boolean;
  /** the wire type of one value (0 varint, 1 64-bit, 2 length-delimited, 5 32-bit) */
  wire: number;
  message?: protobuf.Type;
}

interface TypePlan {
  byId: Map<number, FieldPlan>;
  /** the names of its repeated fields, each an empty array in a fresh message */
  repeated: string[];
  required: string[];
}

const plans = new WeakMap<protobuf.Type, TypePlan>();

function planOf(type: protobuf.Type): TypePlan {
  let plan = plans.get(type);
  if (plan) return plan;
  plan = { byId: new Map(), repeated: [], required: [] };
  for (const f of type.fieldsArray) {
    const kind = kindOf(type, f);
    const message = kind === 'message' ? (f.resolvedType as protobuf.Type) : undefined;
    plan.byId.set(f.id, { name: f.name, kind, code: CODE[kind], repeated: f.repeated, wire: WIRE[kind], message });
    if (f.repeated) plan.repeated.push(f.name);
    if (f.required) plan.required.push(f.name);
  }
  plans.set(type, plan);
  return plan;
}

const TWO32 = 0x100000000;

/** A varint of up to 64 bits, exact. Up to 7 bytes (49 bits) stays in a double. */
function varint64(r: protobuf.Reader): bigint {
  const { buf, len } = r;
  let pos = r.pos;
  let n = 0;
  let scale = 1;
  for (let i = 0; i < 7; i++) {
    if (pos >= len) throw new RangeError(`index out of range: ${pos} + 1 > ${len}`);
    const b = buf[pos++];
    n += (b & 0x7f) * scale;
    if (b < 0x80) {
      r.pos = pos;
      return BigInt(n);
    }
    scale *= 128;
  }
  let big = BigInt(n);
  for (let shift = 49n; shift < 70n; shift += 7n) {
    if (pos >= len) throw new RangeError(`index out of range: ${pos} + 1 > ${len}`);
    const b = buf[pos++];
    big |= BigInt(b & 0x7f) << shift;
    if (b < 0x80) {
      r.pos = pos;
      return BigInt.asUintN(64, big);
    }
  }
  throw new RangeError('invalid varint encoding');
}

function fixed64(r: protobuf.Reader): bigint {
  if (r.pos + 8 > r.len) throw new RangeError(`index out of range: ${r.pos} + 8 > ${r.len}`);
  const lo = r.fixed32();
  const hi = r.fixed32();
  return hi === 0 ? BigInt(lo) : BigInt(hi) * BigInt(TWO32) + BigInt(lo);
}

function value(r: protobuf.Reader, f: FieldPlan): unknown {
  switch (f.code) {
    case Code.int32: case Code.enum: return r.int32();
    case Code.uint32: return r.uint32();
    case Code.sint32: return r.sint32();
    case Code.fixed32: return r.fixed32();
    case Code.sfixed32: return r.sfixed32();
    case Code.bool: return r.bool();
    case Code.uint64: return varint64(r);
    case Code.int64: return BigInt.asIntN(64, varint64(r));
    case Code.sint64: {
      const z = varint64(r);
      return (z >> 1n) ^ -(z & 1n);
    }
    case Code.fixed64: return fixed64(r);
    case Code.sfixed64: return BigInt.asIntN(64, fixed64(r));
    case Code.double: return r.double();
    case Code.float: return r.float();
    case Code.string: return r.string();
    case Code.bytes: return r.bytes();
    case Code.message: {
      const len = r.uint32();
      return decodeFrom(r, f.message as protobuf.Type, r.pos + len);
    }
  }
}

function decodeFrom(r: protobuf.Reader, type: protobuf.Type, end: number): Record<string, unknown> {
  if (end > r.len) throw new RangeError(`index out of range: ${end} > ${r.len}`);
  const plan = planOf(type);
  const out: Record<string, unknown> = {};
  // indexed loops: without TurboFan (cli/bin/run.js) a for-of allocates per element
  for (let k = 0; k < plan.repeated.length; k++) out[plan.repeated[k]] = [];
  while (r.pos < end) {
    const tag = r.uint32();
    const wire = tag & 7;
    const f = plan.byId.get(tag >>> 3);
    if (!f) {
      r.skipType(wire);
      continue;
    }
    if (f.repeated) {
      const list = out[f.name] as unknown[];
      if (wire === 2 && f.wire !== 2) {
        // packed: a run of values in one length-delimited field
        const stop = r.uint32() + r.pos;
        while (r.pos < stop) list.push(value(r, f));
        continue;
      }
      if (wire !== f.wire) throw new RangeError(`invalid wire type ${wire} for ${f.name}`);
      list.push(value(r, f));
    } else {
      if (wire !== f.wire) throw new RangeError(`invalid wire type ${wire} for ${f.name}`);
      out[f.name] = value(r, f);
    }
  }
  if (r.pos !== end) throw new RangeError(`${type.name} runs ${r.pos - end} bytes past its end`);
  for (let k = 0; k < plan.required.length; k++) {
    if (out[plan.required[k]] === undefined) throw new RangeError(`missing required '${plan.required[k]}'`);
  }
  return out;
}

/** Decodes one message of `type` from the whole of `buf`. */
export function decodeWire(buf: Buffer, type: protobuf.Type): Record<string, unknown> {
  try {
    return decodeFrom(protobuf.Reader.create(buf), type, buf.length);
  } catch (e) {
    if (e instanceof SchemaError) throw e;
    throw new SchemaError(`not a valid ${type.name}: ${(e as Error).message}`);
  }
}
