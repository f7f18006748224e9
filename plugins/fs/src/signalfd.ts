import {
  FdType, NO_FOWN, O,
  type DumpContext, type DumpTask, type FdResource, type FieldDifference, type FileDescription, type FileKind, type RestoreContext,
  type RestoreTask, type SignalfdEntry,
} from '@amber/core';

const maskOf = (fd: FdResource) => BigInt('0x' + (fd.info.extra.get('sigmask') ?? '0').trim());

export class SignalfdKind implements FileKind {
  readonly fdType = FdType.SIGNALFD;
  readonly name = 'signalfd';

  claims(fd: FdResource): boolean {
    return fd.link === 'anon_inode:[signalfd]';
  }

  dumpDescription(_ctx: DumpContext, _task: DumpTask, fd: FdResource, id: number): FileDescription {
    const sgfd: SignalfdEntry = { id, flags: fd.info.flags & ~O.CLOEXEC, fown: NO_FOWN, sigmask: maskOf(fd) };
    return { id, type: FdType.SIGNALFD, sgfd };
  }

  openDescription(_ctx: RestoreContext, task: RestoreTask, entry: FileDescription): number {
    const sgfd = entry.sgfd as SignalfdEntry;
    const remote = task.remote;
    remote.resetData();
    const mask = Buffer.alloc(8);
    mask.writeBigUInt64LE(sgfd.sigmask);
    const fd = remote.sys.signalfd4(-1, mask, 8, sgfd.flags & O.NONBLOCK);
    remote.resetData();
    return fd;
  }

  compareDescription(live: FdResource, entry: FileDescription): FieldDifference[] {
    const sgfd = entry.sgfd as SignalfdEntry;
    const mask = maskOf(live);
    return mask === sgfd.sigmask ? [] : [{ what: 'signalfd mask', expected: `0x${sgfd.sigmask.toString(16)}`, actual: `0x${mask.toString(16)}` }];
  }
}
