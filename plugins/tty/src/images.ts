import * as path from 'node:path';
import { AmberError, registerImageType, type FileEntryMember } from '@amber/core';

export type { TermiosEntry, TtyDataEntry, TtyFileEntry, TtyInfoEntry, WinsizeEntry } from './generated';
export { TtyType } from './generated';

export const TTY_PROTO = path.resolve(__dirname, '..', 'proto', 'tty.proto');

/** files.img's member for a terminal: CRIU's `tty`, field 19. */
export const TTY_MEMBER: FileEntryMember = { field: 19, name: 'tty', protoFile: TTY_PROTO, message: 'ambertty.TtyFileEntry' };

/** CRIU's magics (criu/include/magic.h), so crit knows these files. */
export function registerTtyImages(): void {
  registerImageType({ type: 'tty-info', magic: 0x59453036, protoFile: TTY_PROTO, message: 'ambertty.TtyInfoEntry' });
  registerImageType({ type: 'tty-data', magic: 0x59413026, protoFile: TTY_PROTO, message: 'ambertty.TtyDataEntry' });
}

/** tty images that do not fit together (damaged, or from different dumps). */
export class TtyImageError extends AmberError {}
