import * as path from 'node:path';
import { registerImageType, type DumpContext, type ImageStore } from '@amber/core';
import type { GhostFileEntry, PipeDataEntry } from './generated';

export type { FileLockEntry, GhostFileEntry, MemfdInodeEntry, PipeDataEntry, RemapFilePathEntry } from './generated';

const PROTO = path.resolve(__dirname, '..', 'proto', 'fs-images.proto');
/** The messages of the fs kinds' members of files.img (FileKind.member). */
export const FS_FILES_PROTO = path.resolve(__dirname, '..', 'proto', 'fs-files.proto');

/** CRIU's magics, so crit knows these files. */
export function registerFsImages(): void {
  const blobOfPipe = (e: PipeDataEntry) => e.bytes;
  registerImageType<PipeDataEntry>({ type: 'pipes-data', magic: 0x56453709, protoFile: PROTO, message: 'amberfs.PipeDataEntry', blobLength: blobOfPipe });
  registerImageType<PipeDataEntry>({ type: 'fifo-data', magic: 0x59333054, protoFile: PROTO, message: 'amberfs.PipeDataEntry', blobLength: blobOfPipe });
  registerImageType<GhostFileEntry>({
    type: 'ghost-file', magic: 0x52583605, protoFile: PROTO, message: 'amberfs.GhostFileEntry',
    // CRIU writes neither chunks_bytes nor, for a small file, size: its data runs to the end
    blobLength: (e, rest) => Number((e.chunks ? e.chunksBytes : e.size) ?? BigInt(rest)),
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
