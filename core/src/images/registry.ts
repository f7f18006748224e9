/**
 * The table of image types: magic numbers, schema messages and blob rules.
 * Built-in types are declared here; plugins add theirs at run time with
 * registerImageType(). Schemas are loaded lazily, on first use, into one shared
 * protobufjs Root (schemas.ts).
 */
import * as path from 'node:path';
import * as protobuf from 'protobufjs';
import { ImageError } from './errors';
import { describesMessage, loadSchemaFile, PROTO_DIR, schemaRoot } from './schemas';

export { PROTO_DIR };

/** First u32 of every image file except inventory.img and raw pages. */
export const IMG_COMMON_MAGIC = 0x54564319;
/** First u32 of "service" files (stats-*.img) instead of the common one. */
export const IMG_SERVICE_MAGIC = 0x55105940;
export const INVENTORY_MAGIC = 0x58313116;

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
  | 'seccomp'
  | 'timens';

/** A built-in image type, or one a plugin registered. */
export type ImageType = BuiltinImageType | (string & {});

/**
 * What precedes the entries: `common` = IMG_COMMON_MAGIC then the type magic
 * (most images), `service` = IMG_SERVICE_MAGIC then the type magic (stats),
 * `none` = the type magic alone (inventory.img only).
 */
export type ImagePrefix = 'common' | 'service' | 'none';

/** `E`: the entry message's type, for blobLength. */
export interface ImageTypeRegistration<E extends object = object> {
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
   * `rest`: the bytes left in the file after the entry (CRIU's ghost files run to its end).
   */
  blobLength?(entry: E, rest: number): number;
  /** the blob is zero-padded to a multiple of this (default 1) */
  blobAlign?: number;
  /**
   * Set for an image CRIU has no counterpart of (its tools do not read it): why amber keeps it.
   * `amber show` says so.
   */
  amberOnly?: string;
  /** Each decoded entry passes through this: a field CRIU moved is read from where it now is. */
  onRead?(entry: E): E;
  /** Each entry passes through this before encoding: what both CRIU's old and new readers want. */
  onWrite?(entry: E): E;
}

/** A registered type with its schema resolved. */
export interface ResolvedImageType {
  readonly def: Readonly<ImageTypeRegistration> & { readonly prefix: ImagePrefix };
  readonly entryType: protobuf.Type;
  readonly headType?: protobuf.Type;
}

function loadSchema(file: string): void {
  try {
    loadSchemaFile(file);
  } catch (e) {
    throw new ImageError(`cannot load image schema ${file}: ${(e as Error).message}`);
  }
}

function lookupMessage(file: string, name: string): protobuf.Type {
  loadSchema(file);
  try {
    return schemaRoot.lookupType(name);
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
// CRIU 4.x moved nr_pages to a 64-bit field 5 and writes 0 in field 2; older readers (crit 3.17)
// only know field 2. amber writes both and reads field 5 when it is there.
type PagemapOnDisk = { nrPages: number; nrPages64?: bigint };
builtin('pagemap', 0x56084025, 'pagemap.proto', 'PagemapEntry', {
  headMessage: 'amber.PagemapHead',
  onRead: (e: object) => {
    const { nrPages64, ...rest } = e as PagemapOnDisk;
    return nrPages64 === undefined ? rest : { ...rest, nrPages: Number(nrPages64) };
  },
  onWrite: (e: object) => ({ ...e, nrPages64: BigInt((e as PagemapOnDisk).nrPages) }),
});
builtin('fs', 0x51403912, 'fs.proto', 'FsEntry');
builtin('fdinfo', 0x56213732, 'files.proto', 'FdinfoEntry');
builtin('files', 0x56303138, 'files.proto', 'FileEntry');
builtin('stats', 0x57093306, 'stats.proto', 'StatsEntry', { prefix: 'service' });
builtin('seccomp', 0x64413049, 'seccomp.proto', 'SeccompEntry');
builtin('timens', 0x43114433, 'timens.proto', 'TimensEntry');

const hex = (n: number): string => `0x${n.toString(16)}`;

/**
 * Add an image type (a plugin's, typically). Registering the same
 * definition twice is harmless; a clash of name or magic is an ImageError.
 * The schema is loaded now, so a bad .proto is reported at registration (one with a current
 * descriptor defining the messages, as the build makes for amber's own, at first use).
 */
export function registerImageType<E extends object = object>(def: ImageTypeRegistration<E>): void {
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
  // A schema whose descriptor (made by the build from its present text) defines the messages is
  // loaded at their first use: a command loads only the schemas it writes or reads, where loading
  // every plugin's cost each start ~10-20 ms. Any other .proto is loaded now, so a bad one is
  // reported at registration.
  for (const message of [def.message, def.headMessage]) {
    if (message && !describesMessage(def.protoFile, message)) lookupMessage(def.protoFile, message);
  }
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

/**
 * A per-kind member of files.img's FileEntry (CRIU's file_entry carries `reg`, `usk`, `isk`,
 * `tty` ... side by side): its field number, the field's name, and the message it holds.
 */
export interface FileEntryMember {
  /** field number in FileEntry — CRIU's: reg 3, isk 4, nsf 5, psk 6, nlsk 7, efd 8, epfd 9,
   *  sgfd 10, tunf 11, tfd 12, ify 13, ffy 14, ext 15, usk 16, fifo 17, pipe 18, tty 19, memfd 20, bpf 21, pidfd 22 */
  readonly field: number;
  /** the field's name as amber's objects carry it ('usk') */
  readonly name: string;
  /** absolute path of the .proto defining `message` */
  readonly protoFile: string;
  /** fully qualified message name, e.g. 'amberunix.UnixSkEntry' */
  readonly message: string;
}

/** Who added each FileEntry member: the core (files.proto), or the file kind that declared it. */
const memberOwners = new Map<number, string>();

function fileEntryType(): protobuf.Type {
  const t = resolveImageType('files').entryType;
  if (!memberOwners.size) for (const f of t.fieldsArray) memberOwners.set(f.id, 'the core');
  return t;
}

const describeField = (f: protobuf.Field): string => `${f.name} (field ${f.id}, ${f.resolvedType?.fullName.slice(1) ?? f.type})`;

/**
 * Adds a file kind's member to FileEntry (`owner` names the kind: "the fs plugin's pipe kind"),
 * so files.img carries it and the codec accepts it. The same member again from the same kind (a
 * plugin loaded twice) is harmless, as is a kind using a member the core declares (reg); a member
 * whose number or name another kind or the core already uses is an ImageError naming both.
 */
export function registerFileEntryMember(member: FileEntryMember, owner: string): void {
  const entry = fileEntryType();
  const what = `${owner}: files.img member ${member.name} (field ${member.field}, ${member.message})`;
  if (!/^[a-z][A-Za-z0-9]*$/.test(member.name)) throw new ImageError(`${what}: the name is not a plain lowerCamelCase word`);
  if (!Number.isInteger(member.field) || member.field < 3 || member.field > 0x1fffffff || (member.field >= 19000 && member.field < 20000)) {
    throw new ImageError(`${what}: the field number must be an integer from 3 up, outside protobuf's reserved 19000-19999`);
  }
  if (!path.isAbsolute(member.protoFile)) throw new ImageError(`${what}: protoFile ${member.protoFile} is not an absolute path`);
  const type = lookupMessage(member.protoFile, member.message);
  const byNumber = entry.fieldsById[member.field];
  const byName = entry.fields[member.name];
  const taken = byNumber ?? byName;
  const sameField = byNumber !== undefined && byNumber === byName && byNumber.resolvedType === type;
  const sharedOwner = [owner, 'the core'].includes(memberOwners.get(member.field) ?? '');
  if (sameField && sharedOwner) return;
  if (taken) {
    throw new ImageError(`${what} clashes with ${describeField(taken)} of ${memberOwners.get(taken.id) ?? 'the core'}`);
  }
  const field = new protobuf.Field(member.name, member.field, type.fullName, 'optional');
  entry.add(field);
  // resolved here: the root's resolveAll() skips a type it has resolved before
  field.resolve();
  memberOwners.set(member.field, owner);
}

/** The members FileEntry has now (the core's and those of the kinds loaded), by field number. */
export function fileEntryMembers(): { field: number; name: string; owner: string }[] {
  const entry = fileEntryType();
  return entry.fieldsArray
    .filter((f) => f.resolvedType instanceof protobuf.Type)
    .map((f) => ({ field: f.id, name: f.name, owner: memberOwners.get(f.id) ?? 'the core' }));
}
