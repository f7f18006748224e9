import {
  FdType, NO_FOWN, O, SYS,
  type DumpContext, type DumpTask, type FdResource, type FieldDifference, type FileKind, type RestoreContext,
  type RestoreTask, 
} from '@amber/core';
import { FS_FILES_PROTO } from './images';
import type { SignalfdEntry } from './generated';

const maskOf = (fd: FdResource) => BigInt('0x' + (fd.info.extra.get('sigmask') ?? '0').trim());

export class SignalfdKind implements FileKind<SignalfdEntry> {
  readonly fdType = FdType.SIGNALFD;
  readonly name = 'signalfd';
  readonly member = { field: 10, name: 'sgfd', protoFile: FS_FILES_PROTO, message: 'amberfs.SignalfdEntry' };

  claims(fd: FdResource): boolean {
    return fd.link === 'anon_inode:[signalfd]';
  }

  dumpDescription(_ctx: DumpContext, _task: DumpTask, fd: FdResource, id: number): SignalfdEntry {
    const sgfd: SignalfdEntry = { id, flags: fd.info.flags & ~O.CLOEXEC, fown: NO_FOWN, sigmask: maskOf(fd) };
    return sgfd;
  }

  openDescription(_ctx: RestoreContext, task: RestoreTask, sgfd: SignalfdEntry): number {
    const remote = task.remote;
    remote.resetData();
    const mask = Buffer.alloc(8);
    mask.writeBigUInt64LE(sgfd.sigmask);
    const fd = remote.sys.signalfd4(-1, mask, 8, sgfd.flags & O.NONBLOCK);
    remote.resetData();
    return fd;
  }

  compareDescription(live: FdResource, sgfd: SignalfdEntry): FieldDifference[] {
    const mask = maskOf(live);
    return mask === sgfd.sigmask ? [] : [{ what: 'signalfd mask', expected: `0x${sgfd.sigmask.toString(16)}`, actual: `0x${mask.toString(16)}` }];
  }
}
