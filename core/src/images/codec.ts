/**
 * Conversion between amber's message objects (bigint for every 64-bit field,
 * arrays for every repeated field) and protobufjs for encoding, plus strict
 * checking so a message missing a required field never reaches the disk:
 * CRIU's decoders reject such a file outright. Decoding: wire-decode.ts.
 */
import * as protobuf from 'protobufjs';
import Long from 'long';
import { SchemaError } from './errors';
import { decodeWire } from './wire-decode';

export { SchemaError };

const LONG_TYPES = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);
const SIGNED_LONG = new Set(['int64', 'sint64', 'sfixed64']);
const U32 = new Set(['uint32', 'fixed32']);
const I32 = new Set(['int32', 'sint32', 'sfixed32']);

const TWO64 = 1n << 64n;
const TWO63 = 1n << 63n;

export function is64(field: protobuf.Field): boolean {
  return LONG_TYPES.has(field.type);
}

const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER);
const SAFE_MIN = -SAFE_MAX;

/** A number where it is exact (protobufjs writes one without making a Long), else a Long. */
function bigintToLong(v: bigint, signed: boolean, where: string): Long | number {
  const ok = signed ? v >= -TWO63 && v < TWO63 : v >= 0n && v < TWO64;
  if (!ok) throw new SchemaError(`${where}: ${v} does not fit ${signed ? 'a signed' : 'an unsigned'} 64-bit field`);
  if (v <= SAFE_MAX && v >= SAFE_MIN) return Number(v);
  const bits = BigInt.asUintN(64, v);
  return new Long(Number(bits & 0xffffffffn) | 0, Number(bits >> 32n) | 0, !signed);
}

function scalarToWire(field: protobuf.Field, v: unknown, where: string): unknown {
  const t = field.type;
  if (field.resolvedType instanceof protobuf.Type) {
    if (typeof v !== 'object' || v === null || Array.isArray(v) || Buffer.isBuffer(v)) {
      throw new SchemaError(`${where}: expected a ${field.resolvedType.name} object`);
    }
    return toWire(v as Record<string, unknown>, field.resolvedType, `${where}.`);
  }
  if (LONG_TYPES.has(t)) {
    if (typeof v !== 'bigint') throw new SchemaError(`${where}: expected a bigint (64-bit field), got ${typeof v}`);
    return bigintToLong(v, SIGNED_LONG.has(t), where);
  }
  if (field.resolvedType instanceof protobuf.Enum || U32.has(t) || I32.has(t)) {
    const lo = U32.has(t) ? 0 : -0x80000000;
    const hi = U32.has(t) ? 0xffffffff : 0x7fffffff;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) {
      throw new SchemaError(`${where}: expected a 32-bit integer, got ${String(v)}`);
    }
    return v;
  }
  switch (t) {
    case 'bool':
      if (typeof v !== 'boolean') throw new SchemaError(`${where}: expected a boolean`);
      return v;
    case 'string':
      if (typeof v !== 'string') throw new SchemaError(`${where}: expected a string`);
      return v;
    case 'bytes':
      if (!(v instanceof Uint8Array)) throw new SchemaError(`${where}: expected a Buffer`);
      return v;
    case 'double':
    case 'float':
      if (typeof v !== 'number') throw new SchemaError(`${where}: expected a number`);
      return v;
    default:
      throw new SchemaError(`${where}: unsupported field type ${t}`);
  }
}

/** amber object -> protobufjs plain object (Long for 64-bit), checked. */
export function toWire(obj: Record<string, unknown>, type: protobuf.Type, prefix = ''): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(obj)) {
    if (v === undefined) continue;
    const field = type.fields[key];
    const where = `${prefix}${key}`;
    if (!field) throw new SchemaError(`${where}: ${type.name} has no such field`);
    if (field.repeated) {
      if (!Array.isArray(v)) throw new SchemaError(`${where}: expected an array`);
      out[key] = v.map((x: unknown, i: number) => scalarToWire(field, x, `${where}[${i}]`));
    } else {
      out[key] = scalarToWire(field, v, where);
    }
  }
  for (const field of type.fieldsArray) {
    if (field.required && out[field.name] === undefined) {
      throw new SchemaError(`missing required field ${prefix}${field.name} (${type.name})`);
    }
  }
  return out;
}

export function encodeMessage(obj: object, type: protobuf.Type): Buffer {
  const wire = toWire(obj as Record<string, unknown>, type);
  return Buffer.from(type.encode(wire).finish());
}

/** One message of `type`, decoded to amber's object (bigint, arrays always set). */
export function decodeMessage(buf: Buffer, type: protobuf.Type): Record<string, unknown> {
  return decodeWire(buf, type);
}

/** A top-level field of an encoded message that its type does not declare. */
export interface UnknownField {
  field: number;
  /** protobuf wire type: 0 varint, 1 64-bit, 2 length-delimited, 5 32-bit */
  wireType: number;
  /** the value's bytes (for wire type 2, without the length) */
  bytes: Buffer;
}

/** The fields of `buf` that `type` has no declaration for (the decoder skips them silently). */
export function unknownFields(buf: Buffer, type: protobuf.Type): UnknownField[] {
  const out: UnknownField[] = [];
  const r = protobuf.Reader.create(buf);
  try {
    while (r.pos < r.len) {
      const tag = r.uint32();
      const field = tag >>> 3;
      const wireType = tag & 7;
      const start = r.pos;
      if (wireType === 2) {
        const bytes = r.bytes();
        if (!type.fieldsById[field]) out.push({ field, wireType, bytes: Buffer.from(bytes) });
        continue;
      }
      r.skipType(wireType);
      if (!type.fieldsById[field]) out.push({ field, wireType, bytes: Buffer.from(buf.subarray(start, r.pos)) });
    }
  } catch (e) {
    throw new SchemaError(`not a valid ${type.name}: ${(e as Error).message}`);
  }
  return out;
}
