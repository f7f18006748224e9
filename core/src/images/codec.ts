/**
 * amber's message objects (bigint for every 64-bit field, arrays for every
 * repeated field) to and from the wire: encoding, checked, in wire-encode.ts;
 * decoding in wire-decode.ts.
 */
import * as protobuf from 'protobufjs';
import { SchemaError } from './errors';
import { decodeWire } from './wire-decode';
import { encodeWire } from './wire-encode';

export { SchemaError };

const LONG_TYPES = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);

export function is64(field: protobuf.Field): boolean {
  return LONG_TYPES.has(field.type);
}

/** One message of `type`, checked and encoded (wire-encode.ts). */
export function encodeMessage(obj: object, type: protobuf.Type): Buffer {
  return encodeWire(obj, type);
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
