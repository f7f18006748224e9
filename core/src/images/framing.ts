/**
 * The byte layout of an image file:
 *
 *   [u32 prefix magic] u32 type magic
 *   { u32 length, protobuf message of that length, [raw blob] }*
 *
 * All integers little-endian. The prefix magic is absent in inventory.img.
 * A blob's length is not framed: the reader learns it from the entry just
 * decoded (ImageTypeRegistration.blobLength).
 */
import { ImageError } from './errors';
import { SchemaError, decodeMessage, encodeMessage } from './codec';
import { IMG_COMMON_MAGIC, IMG_SERVICE_MAGIC, type ResolvedImageType, imageTypeByMagic } from './registry';

export interface ParsedImage {
  head?: Record<string, unknown>;
  entries: Record<string, unknown>[];
  blobs: (Buffer | undefined)[];
  /** each entry's encoded message, as the file holds it */
  payloads: Buffer[];
}

const hex = (n: number): string => `0x${n.toString(16)}`;

function prefixMagic(r: ResolvedImageType): number | undefined {
  switch (r.def.prefix) {
    case 'common':
      return IMG_COMMON_MAGIC;
    case 'service':
      return IMG_SERVICE_MAGIC;
    default:
      return undefined;
  }
}

function blobSize(r: ResolvedImageType, entry: object, file: string, where: string, rest: number): { len: number; padded: number } {
  const fn = r.def.blobLength;
  if (!fn) return { len: 0, padded: 0 };
  let len: number;
  try {
    len = fn(entry, rest);
  } catch (e) {
    throw new ImageError(`${file}: ${where}: blobLength failed: ${(e as Error).message}`);
  }
  if (!Number.isSafeInteger(len) || len < 0) throw new ImageError(`${file}: ${where}: blobLength gave ${len}`);
  const align = r.def.blobAlign ?? 1;
  return { len, padded: Math.ceil(len / align) * align };
}

function encodeOrThrow(obj: object, r: ResolvedImageType, head: boolean, file: string, where: string): Buffer {
  try {
    return encodeMessage(obj, head && r.headType ? r.headType : r.entryType);
  } catch (e) {
    if (e instanceof SchemaError) throw new ImageError(`${file}: ${where}: ${e.message}`);
    throw e;
  }
}

export function buildImage(
  r: ResolvedImageType,
  file: string,
  entries: object[],
  head: object | undefined,
  blobs: (Buffer | undefined)[] | undefined,
): Buffer {
  if (r.headType && head === undefined) throw new ImageError(`${file}: a ${r.def.type} image needs a head (${r.headType.name})`);
  if (!r.headType && head !== undefined) throw new ImageError(`${file}: a ${r.def.type} image has no head message`);
  if (blobs && !r.def.blobLength) throw new ImageError(`${file}: ${r.def.type} entries carry no blobs`);
  const parts: Buffer[] = [];
  const magic = Buffer.alloc(8);
  const prefix = prefixMagic(r);
  if (prefix !== undefined) {
    magic.writeUInt32LE(prefix, 0);
    magic.writeUInt32LE(r.def.magic, 4);
    parts.push(magic);
  } else {
    magic.writeUInt32LE(r.def.magic, 0);
    parts.push(magic.subarray(0, 4));
  }
  const frame = (payload: Buffer): void => {
    const len = Buffer.alloc(4);
    len.writeUInt32LE(payload.length, 0);
    parts.push(len, payload);
  };
  if (head !== undefined) frame(encodeOrThrow(head, r, true, file, 'head'));
  entries.forEach((entry, i) => {
    const where = `entry ${i}`;
    frame(encodeOrThrow(r.def.onWrite ? r.def.onWrite(entry) : entry, r, false, file, where));
    const blob = blobs?.[i];
    // writing, what follows the entry is its blob
    const { len, padded } = blobSize(r, entry, file, where, blob?.length ?? 0);
    if ((blob?.length ?? 0) !== len) {
      throw new ImageError(`${file}: ${where}: blob is ${blob?.length ?? 0} bytes but the entry says ${len}`);
    }
    if (blob && len > 0) {
      parts.push(blob);
      if (padded > len) parts.push(Buffer.alloc(padded - len));
    }
  });
  return Buffer.concat(parts);
}

/**
 * Check the leading magic(s) and return where the entries start. `expected`
 * given: it must match; otherwise any registered type is accepted and
 * returned.
 */
export function readMagic(file: string, buf: Buffer, expected?: ResolvedImageType): { type: string; magic: number; start: number } {
  if (buf.length === 0) throw new ImageError(`${file}: empty file (no magic)`);
  if (buf.length < 4) throw new ImageError(`${file}: truncated magic (wants 4 bytes, ${buf.length} left)`);
  const first = buf.readUInt32LE(0);
  let magic = first;
  let start = 4;
  if (first === IMG_COMMON_MAGIC || first === IMG_SERVICE_MAGIC) {
    if (buf.length < 8) throw new ImageError(`${file}: truncated magic (wants 8 bytes, ${buf.length} left)`);
    magic = buf.readUInt32LE(4);
    start = 8;
  }
  const owner = imageTypeByMagic(magic);
  if (expected) {
    const want = expected.def.magic;
    const wantPrefix = prefixMagic(expected);
    const gotPrefix = start === 8 ? first : undefined;
    if (magic !== want) {
      const what = owner ? `, which is ${owner}` : '';
      throw new ImageError(`${file}: wrong magic ${hex(magic)} (expected ${expected.def.type} ${hex(want)}${what})`);
    }
    if (gotPrefix !== wantPrefix) {
      const got = gotPrefix === undefined ? 'none' : hex(gotPrefix);
      const exp = wantPrefix === undefined ? 'none' : hex(wantPrefix);
      throw new ImageError(`${file}: wrong leading magic ${got} (expected ${exp} before ${expected.def.type} ${hex(want)})`);
    }
    return { type: expected.def.type, magic, start };
  }
  if (!owner) throw new ImageError(`${file}: unknown magic ${hex(magic)}`);
  return { type: owner, magic, start };
}

export function parseImage(r: ResolvedImageType, file: string, buf: Buffer): ParsedImage {
  let off = readMagic(file, buf, r).start;
  const out: ParsedImage = { entries: [], blobs: [], payloads: [] };
  let index = 0;
  while (off < buf.length) {
    const isHead = index === 0 && r.headType !== undefined;
    const where = isHead ? `head at offset ${off}` : `entry ${out.entries.length} at offset ${off}`;
    const left = buf.length - off;
    if (left < 4) throw new ImageError(`${file}: ${where} is truncated (wants 4 bytes of length, ${left} left)`);
    const len = buf.readUInt32LE(off);
    if (len > left - 4) throw new ImageError(`${file}: ${where} is truncated (wants ${len} bytes, ${left - 4} left)`);
    const payload = buf.subarray(off + 4, off + 4 + len);
    let msg: Record<string, unknown>;
    try {
      msg = decodeMessage(payload, isHead && r.headType ? r.headType : r.entryType);
    } catch (e) {
      if (e instanceof SchemaError) throw new ImageError(`${file}: ${where}: ${e.message}`);
      throw e;
    }
    off += 4 + len;
    if (isHead) {
      out.head = msg;
    } else {
      const { len: blen, padded } = blobSize(r, msg, file, where, buf.length - off);
      let blob: Buffer | undefined;
      if (r.def.blobLength) {
        const rest = buf.length - off;
        if (padded > rest) throw new ImageError(`${file}: blob of ${where} is truncated (wants ${padded} bytes, ${rest} left)`);
        blob = Buffer.from(buf.subarray(off, off + blen));
        off += padded;
      }
      out.entries.push(r.def.onRead ? (r.def.onRead(msg) as Record<string, unknown>) : msg);
      out.blobs.push(blob);
      out.payloads.push(payload);
    }
    index++;
  }
  if (r.headType && out.head === undefined) throw new ImageError(`${file}: no head entry (${r.headType.name})`);
  return out;
}
