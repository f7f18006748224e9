import * as path from 'node:path';
import { registerImageType, type FileEntryMember } from '@amber/core';
import type { SkPacketEntry } from './generated';

export type { FilePermsEntry, ScmEntry, SkOptsEntry, SkPacketEntry, SkUcredEntry, UnixSkEntry } from './generated';

export const UNIX_PROTO = path.resolve(__dirname, '..', 'proto', 'sk-unix.proto');

/** files.img's member for a unix socket: CRIU's `usk`, field 16. */
export const USK_MEMBER: FileEntryMember = { field: 16, name: 'usk', protoFile: UNIX_PROTO, message: 'amberunix.UnixSkEntry' };

export const SK_QUEUES = 'sk-queues';
/** uflags: the peer is a process outside the dumped tree (CRIU's USK_EXTERN). */
export const USK_EXTERN = 1;

export function registerUnixImages(): void {
  registerImageType<SkPacketEntry>({
    type: SK_QUEUES, magic: 0x56264026, protoFile: UNIX_PROTO, message: 'amberunix.SkPacketEntry',
    blobLength: (e) => e.length,
  });
}
