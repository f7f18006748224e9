import * as path from 'node:path';
import type { FileEntryMember } from '@amber/core';

export type { FilePermsEntry, UnixSkEntry } from './generated';
export type { SkOptsEntry } from '@amber/core';

export const UNIX_PROTO = path.resolve(__dirname, '..', 'proto', 'sk-unix.proto');

/** files.img's member for a unix socket: CRIU's `usk`, field 16. */
export const USK_MEMBER: FileEntryMember = { field: 16, name: 'usk', protoFile: UNIX_PROTO, message: 'amberunix.UnixSkEntry' };

/** uflags: the peer is a process outside the dumped tree (CRIU's USK_EXTERN). */
export const USK_EXTERN = 1;
