import * as path from 'node:path';
import { registerImageType, type DumpContext, type ImageStore } from '@amber/core';

const PROTO = path.resolve(__dirname, '..', 'proto', 'fs-images.proto');

export interface PipeDataEntry {
  pipeId: number;
  bytes: number;
  size?: number;
}

export interface GhostFileEntry {
  uid: number;
  gid: number;
  mode: number;
  dev?: number;
  ino?: bigint;
  rdev?: number;
  /** The data follows as CRIU's chunks (extents of a sparse file), chunksBytes long in all. */
  chunks?: boolean;
  size?: bigint;
  chunksBytes?: bigint;
}

export interface MemfdInodeEntry {
  name: string;
  uid: number;
  gid: number;
  size: bigint;
  shmid: number;
  seals: number;
  inodeId: bigint;
}

/** remap-fpath.img: description orig_id opens remap_id (REMAP_GHOST 1: a ghost file). */
export interface RemapFilePathEntry {
  origId: number;
  remapId: number;
  remapType: number;
}

export interface FileLockEntry {
  flag: number;
  type: number;
  pid: number;
  fd: number;
  start: bigint;
  len: bigint;
}

/** CRIU's magics, so crit knows these files. */
export function registerFsImages(): void {
  const blobOfPipe = (e: object) => (e as PipeDataEntry).bytes;
  registerImageType({ type: 'pipes-data', magic: 0x56453709, protoFile: PROTO, message: 'amberfs.PipeDataEntry', blobLength: blobOfPipe });
  registerImageType({ type: 'fifo-data', magic: 0x59333054, protoFile: PROTO, message: 'amberfs.PipeDataEntry', blobLength: blobOfPipe });
  registerImageType({
    type: 'ghost-file', magic: 0x52583605, protoFile: PROTO, message: 'amberfs.GhostFileEntry',
    blobLength: (e) => Number(((e as GhostFileEntry).chunks ? (e as GhostFileEntry).chunksBytes : (e as GhostFileEntry).size) ?? 0n),
  });
  registerImageType({ type: 'memfd-inode', magic: 0x48453499, protoFile: PROTO, message: 'amberfs.MemfdInodeEntry' });
  registerImageType({ type: 'remap-fpath', magic: 0x59133954, protoFile: PROTO, message: 'amberfs.RemapFilePathEntry' });
  registerImageType({ type: 'file-locks', magic: 0x54323616, protoFile: PROTO, message: 'amberfs.FileLockEntry' });
}

/**
 * An image that several descriptions add entries to while the fd table is dumped (after the
 * plugin's own dump step): it is rewritten whole on each addition.
 */
export class GrowingImage<T extends object> {
  private readonly entries: T[] = [];
  private readonly blobs: Buffer[] = [];

  constructor(private readonly store: ImageStore, private readonly type: string, private readonly name: string) {}

  add(entry: T, blob?: Buffer): void {
    this.entries.push(entry);
    if (blob) this.blobs.push(blob);
    this.store.write(this.type, this.name, this.entries, blob ? { blobs: this.blobs } : {});
  }
}

export function growingImage<T extends object>(ctx: DumpContext, type: string, name: string): GrowingImage<T> {
  return ctx.state(`fs:image:${name}`, () => new GrowingImage<T>(ctx.store, type, name));
}
