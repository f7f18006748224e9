/**
 * The table of image types: magic numbers, schema messages and blob rules.
 * Built-in types are declared here; plugins add theirs at run time with
 * registerImageType(). Schemas (.proto) are parsed lazily, on first use, into
 * one shared protobufjs Root so a plugin's .proto can import amber's own
 * (e.g. `import "files.proto";` for FownEntry).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as protobuf from 'protobufjs';
import Long from 'long';
import { ImageError } from './errors';

// 64-bit fields must decode to Long (exact), never to a lossy number.
protobuf.util.Long = Long;
protobuf.configure();

/** First u32 of every image file except inventory.img and raw pages. */
export const IMG_COMMON_MAGIC = 0x54564319;
/** First u32 of "service" files (stats-*.img) instead of the common one. */
export const IMG_SERVICE_MAGIC = 0x55105940;
export const INVENTORY_MAGIC = 0x58313116;

/** Directory holding amber's built-in .proto files. */
export const PROTO_DIR = path.resolve(__dirname, '..', '..', 'proto');

export type BuiltinImageType =
  | 'inventory'
  | 'pstree'
  | 'core'
  | 'ids'
  | 'mm'
  | 'pagemap'
  | 'fs'
  | 'fdinfo'
  | 'files'
  | 'stats'
  | 'seccomp';

/** A built-in image type, or one a plugin registered. */
export type ImageType = BuiltinImageType | (string & {});

/**
 * What precedes the entries: `common` = IMG_COMMON_MAGIC then the type magic
 * (most images), `service` = IMG_SERVICE_MAGIC then the type magic (stats),
 * `none` = the type magic alone (inventory.img only).
 */
export type ImagePrefix = 'common' | 'service' | 'none';

export interface ImageTypeRegistration {
  /** name used with ImageStore.read/write, e.g. 'myplugin-state' */
  type: string;
  /** the u32 type magic; must be unique among registered types */
  magic: number;
  /** absolute path of the .proto defining `message` (and `headMessage`) */
  protoFile: string;
  /** fully qualified message name of every entry, e.g. 'myplugin.MyEntry' */
  message: string;
  /** if set, the first entry of the file is this message instead */
  headMessage?: string;
  /** default 'common' */
  prefix?: ImagePrefix;
  /**
   * For images whose entries are followed by raw data: the data's length in
   * bytes, computed from the decoded entry (as CRIU does: pipe data carries
   * `bytes`, socket queues `length`, ...). Absent: entries have no blobs.
   */
  blobLength?: (entry: object) => number;
  /** the blob is zero-padded to a multiple of this (default 1) */
  blobAlign?: number;
}

/** A registered type with its schema resolved. */
export interface ResolvedImageType {
  readonly def: Readonly<ImageTypeRegistration> & { readonly prefix: ImagePrefix };
  readonly entryType: protobuf.Type;
  readonly headType?: protobuf.Type;
}

const root = new protobuf.Root();
root.resolvePath = (origin: string, target: string): string => {
  if (path.isAbsolute(target)) return target;
  const beside = origin ? path.resolve(path.dirname(origin), target) : path.resolve(target);
  if (fs.existsSync(beside)) return beside;
  const builtin = path.join(PROTO_DIR, target);
  return fs.existsSync(builtin) ? builtin : beside;
};
const loadedFiles = new Set<string>();

function loadSchema(file: string): void {
  if (loadedFiles.has(file)) return;
  try {
    root.loadSync(file, { keepCase: false });
    root.resolveAll();
  } catch (e) {
    throw new ImageError(`cannot load image schema ${file}: ${(e as Error).message}`);
  }
  loadedFiles.add(file);
}

function lookupMessage(file: string, name: string): protobuf.Type {
  loadSchema(file);
  try {
    return root.lookupType(name);
  } catch {
    throw new ImageError(`image schema ${file} has no message ${name}`);
  }
}

const byType = new Map<string, ImageTypeRegistration & { prefix: ImagePrefix }>();
const byMagic = new Map<number, string>();
const resolved = new Map<string, ResolvedImageType>();

function add(def: ImageTypeRegistration): void {
  const full = { ...def, prefix: def.prefix ?? 'common' };
  byType.set(def.type, full);
  byMagic.set(def.magic, def.type);
}

const builtin = (type: BuiltinImageType, magic: number, proto: string, message: string, extra?: Partial<ImageTypeRegistration>): void =>
  add({ type, magic, protoFile: path.join(PROTO_DIR, proto), message: `amber.${message}`, ...extra });

builtin('inventory', INVENTORY_MAGIC, 'inventory.proto', 'InventoryEntry', { prefix: 'none' });
builtin('pstree', 0x50273030, 'pstree.proto', 'PstreeEntry');
builtin('core', 0x55053847, 'core.proto', 'CoreEntry');
builtin('ids', 0x54432030, 'ids.proto', 'TaskKobjIdsEntry');
builtin('mm', 0x57492820, 'mm.proto', 'MmEntry');
builtin('pagemap', 0x56084025, 'pagemap.proto', 'PagemapEntry', { headMessage: 'amber.PagemapHead' });
builtin('fs', 0x51403912, 'fs.proto', 'FsEntry');
builtin('fdinfo', 0x56213732, 'files.proto', 'FdinfoEntry');
builtin('files', 0x56303138, 'files.proto', 'FileEntry');
builtin('stats', 0x57093306, 'stats.proto', 'StatsEntry', { prefix: 'service' });
builtin('seccomp', 0x64413049, 'seccomp.proto', 'SeccompEntry');

const hex = (n: number): string => `0x${n.toString(16)}`;

/**
 * Add an image type (a plugin's, typically). Registering the same
 * definition twice is harmless; a clash of name or magic is an ImageError.
 * The schema is loaded now, so a bad .proto is reported at registration.
 */
export function registerImageType(def: ImageTypeRegistration): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(def.type)) throw new ImageError(`image type name "${def.type}" is not a plain word`);
  if (!Number.isInteger(def.magic) || def.magic <= 0 || def.magic > 0xffffffff) {
    throw new ImageError(`image type ${def.type}: magic ${def.magic} is not a non-zero u32`);
  }
  if (def.magic === IMG_COMMON_MAGIC || def.magic === IMG_SERVICE_MAGIC) {
    throw new ImageError(`image type ${def.type}: magic ${hex(def.magic)} is reserved for the file prefix`);
  }
  if (!path.isAbsolute(def.protoFile)) throw new ImageError(`image type ${def.type}: protoFile ${def.protoFile} is not an absolute path`);
  if (def.blobAlign !== undefined && !(Number.isInteger(def.blobAlign) && def.blobAlign >= 1)) {
    throw new ImageError(`image type ${def.type}: blobAlign must be a positive integer`);
  }
  const old = byType.get(def.type);
  if (old) {
    const same = old.magic === def.magic && old.protoFile === def.protoFile && old.message === def.message &&
      old.headMessage === def.headMessage && old.prefix === (def.prefix ?? 'common');
    if (same) return;
    throw new ImageError(`image type ${def.type} is already registered with another definition`);
  }
  const owner = byMagic.get(def.magic);
  if (owner !== undefined) throw new ImageError(`image type ${def.type}: magic ${hex(def.magic)} already belongs to ${owner}`);
  lookupMessage(def.protoFile, def.message);
  if (def.headMessage) lookupMessage(def.protoFile, def.headMessage);
  add(def);
}

/** The resolved definition of a type; ImageError if it is not registered. */
export function resolveImageType(type: string): ResolvedImageType {
  const hit = resolved.get(type);
  if (hit) return hit;
  const def = byType.get(type);
  if (!def) throw new ImageError(`unknown image type "${type}"`);
  const r: ResolvedImageType = {
    def,
    entryType: lookupMessage(def.protoFile, def.message),
    headType: def.headMessage ? lookupMessage(def.protoFile, def.headMessage) : undefined,
  };
  resolved.set(type, r);
  return r;
}

/** The type name owning a magic, if any. */
export function imageTypeByMagic(magic: number): string | undefined {
  return byMagic.get(magic);
}

/** Names of all registered image types. */
export function imageTypes(): string[] {
  return [...byType.keys()];
}
