import * as protobuf from 'protobufjs';
import { SchemaError } from './errors';

/** What a field holds, as the wire encoder and decoder (wire-encode.ts, wire-decode.ts) tell them apart. */
export type Kind =
  | 'int32' | 'uint32' | 'sint32' | 'fixed32' | 'sfixed32' | 'bool' | 'enum'
  | 'int64' | 'uint64' | 'sint64' | 'fixed64' | 'sfixed64'
  | 'double' | 'float' | 'string' | 'bytes' | 'message';

/**
 * The kinds as small integers, for the hot switches (wire-encode's writeValue): the interpreter
 * (amber runs without TurboFan) jumps on a number but compares a string kind case by case.
 */
export const enum Code {
  int32, uint32, sint32, fixed32, sfixed32, bool, enum, int64, uint64, sint64, fixed64, sfixed64, double, float, string, bytes, message,
}

export const CODE: Record<Kind, Code> = {
  int32: Code.int32, uint32: Code.uint32, sint32: Code.sint32, fixed32: Code.fixed32, sfixed32: Code.sfixed32, bool: Code.bool,
  enum: Code.enum, int64: Code.int64, uint64: Code.uint64, sint64: Code.sint64, fixed64: Code.fixed64, sfixed64: Code.sfixed64,
  double: Code.double, float: Code.float, string: Code.string, bytes: Code.bytes, message: Code.message,
};

/** The wire type of one value of each kind (0 varint, 1 64-bit, 2 length-delimited, 5 32-bit). */
export const WIRE: Record<Kind, number> = {
  int32: 0, uint32: 0, sint32: 0, bool: 0, enum: 0, int64: 0, uint64: 0, sint64: 0,
  fixed64: 1, sfixed64: 1, double: 1, fixed32: 5, sfixed32: 5, float: 5,
  string: 2, bytes: 2, message: 2,
};

/** The field's kind, resolving its type first; a type amber cannot carry is a SchemaError. */
export function kindOf(type: protobuf.Type, f: protobuf.Field): Kind {
  f.resolve();
  if (f.resolvedType instanceof protobuf.Type) return 'message';
  if (f.resolvedType instanceof protobuf.Enum) return 'enum';
  if (f.type in WIRE) return f.type as Kind;
  throw new SchemaError(`${type.name}.${f.name}: unsupported field type ${f.type}`);
}
