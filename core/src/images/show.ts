/**
 * Decoding any image file into plain JSON for `amber show`.
 *
 * Rendering rule: 64-bit integers marked `(hex)` in the schema (addresses,
 * registers, masks) become "0x..." strings; other 64-bit integers become
 * JSON numbers when they are safe integers, else decimal strings. 32-bit
 * integers are numbers, enums their value name, bytes {length, base64}.
 * Keys are amber's camelCase field names.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as protobuf from 'protobufjs';
import { ImageError } from './errors';
import { is64, unknownFields } from './codec';
import { parseImage, readMagic } from './framing';
import { type ImageType, resolveImageType } from './registry';

export type ShownValue = string | number | boolean | null | ShownValue[] | ShownObject;
export interface ShownObject {
  [key: string]: ShownValue;
}

export interface DecodedImageFile {
  /** the file's base name */
  file: string;
  /** image type name, or 'pages' for raw page data */
  type: string;
  /** the type magic (0 for raw pages) */
  magic: number;
  head?: ShownObject;
  entries: ShownObject[];
  /** per entry, for types with blobs */
  blobs?: (ShownObject | null)[];
  /** size of a raw pages file */
  rawBytes?: number;
  /** what the reader should know: fields no loaded schema declares, shown raw */
  notes?: string[];
}

const PAGES_RE = /^pages-\d+\.img$/;

function bytesOf(b: Buffer): ShownObject {
  return { length: b.length, base64: b.toString('base64') };
}

function bigintShown(v: bigint, hex: boolean): string | number {
  if (hex) return v < 0n ? `-0x${(-v).toString(16)}` : `0x${v.toString(16)}`;
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
}

function valueShown(field: protobuf.Field, v: unknown): ShownValue {
  const rt = field.resolvedType;
  if (rt instanceof protobuf.Type) return render(v as Record<string, unknown>, rt);
  if (rt instanceof protobuf.Enum) return rt.valuesById[v as number] ?? (v as number);
  if (is64(field)) return bigintShown(v as bigint, field.options?.['(hex)'] === true);
  if (Buffer.isBuffer(v)) return bytesOf(v);
  return v as string | number | boolean;
}

/** An amber message object as JSON-friendly data, per the rule above. */
export function render(obj: Record<string, unknown>, type: protobuf.Type): ShownObject {
  const out: ShownObject = {};
  for (const field of type.fieldsArray) {
    const v = obj[field.name];
    if (v === undefined) continue;
    out[field.name] = field.repeated ? (v as unknown[]).map((x) => valueShown(field, x)) : valueShown(field, v);
  }
  return out;
}

/** The image type of a file, from its magic ('pages' for pages-N.img). */
export function imageTypeOfFile(file: string): ImageType | 'pages' {
  const base = path.basename(file);
  if (PAGES_RE.test(base)) return 'pages';
  const head = Buffer.alloc(8);
  let n: number;
  try {
    const fd = fs.openSync(file, 'r');
    try {
      n = fs.readSync(fd, head, 0, 8, 0);
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    throw new ImageError(`${base}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return readMagic(base, head.subarray(0, n)).type;
}

/** Decode any image file into JSON-friendly data. */
export function decodeImageFile(file: string): DecodedImageFile {
  const base = path.basename(file);
  const type = imageTypeOfFile(file);
  if (type === 'pages') {
    return { file: base, type, magic: 0, entries: [], rawBytes: fs.statSync(file).size };
  }
  const r = resolveImageType(type);
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw new ImageError(`${base}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const parsed = parseImage(r, base, buf);
  const out: DecodedImageFile = {
    file: base,
    type,
    magic: r.def.magic,
    entries: parsed.entries.map((e) => render(e, r.entryType)),
  };
  const notes = unknownNotes(parsed.payloads, r.entryType, out.entries);
  if (r.def.amberOnly) notes.unshift(`an image of amber's own, which CRIU does not read: ${r.def.amberOnly}`);
  if (notes.length) out.notes = notes;
  if (parsed.head && r.headType) out.head = render(parsed.head, r.headType);
  if (r.def.blobLength) out.blobs = parsed.blobs.map((b) => (b ? bytesOf(b) : null));
  return out;
}

/** Key under which an undeclared field shows, raw. */
export const unknownFieldKey = (field: number): string => `unknown field ${field}`;

/**
 * Fields of the entries that the schema does not declare — in files.img, the member of a file
 * kind whose plugin is not loaded — are added to the shown entries raw (bytes), under
 * "unknown field N", and said once per field number in a note: never dropped without a word.
 */
function unknownNotes(payloads: Buffer[], type: protobuf.Type, shown: ShownObject[]): string[] {
  const count = new Map<number, number>();
  payloads.forEach((p, i) => {
    for (const u of unknownFields(p, type)) {
      const key = unknownFieldKey(u.field);
      const value = bytesOf(u.bytes);
      const had = shown[i][key];
      shown[i][key] = had === undefined ? value : Array.isArray(had) ? [...had, value] : [had, value];
      count.set(u.field, (count.get(u.field) ?? 0) + 1);
    }
  });
  const whose = type.fullName === '.amber.FileEntry' ? 'the member of a file kind whose plugin is not loaded (--plugin PATH loads it)' : 'written by a newer or another tool';
  return [...count].map(([field, n]) => `${n} ${n === 1 ? 'entry carries' : 'entries carry'} field ${field}, which ${type.name} does not declare here: ${whose}; shown raw as "${unknownFieldKey(field)}"`);
}
