import {
  FdType, NO_FOWN, O, SYS,
  type DumpContext, type DumpTask, type FdResource, type FieldDifference, type FileKind,
  type RestoreContext, type RestoreTask,
} from '@amber/core';
import { FS_FILES_PROTO } from './images';
import type { EventfdFileEntry } from './generated';

const EFD_SEMAPHORE = 1;

function counterOf(fd: FdResource): bigint {
  return BigInt('0x' + (fd.info.extra.get('eventfd-count') ?? '0').trim());
}

export class EventfdKind implements FileKind<EventfdFileEntry> {
  readonly fdType = FdType.EVENTFD;
  readonly name = 'eventfd';
  readonly member = { field: 8, name: 'efd', protoFile: FS_FILES_PROTO, message: 'amberfs.EventfdFileEntry' };

  claims(fd: FdResource): boolean {
    return fd.link === 'anon_inode:[eventfd]';
  }

  dumpDescription(_ctx: DumpContext, _task: DumpTask, fd: FdResource, id: number): EventfdFileEntry {
    const semaphore = fd.info.extra.get('eventfd-semaphore') === '1' ? EFD_SEMAPHORE : 0;
    const efd: EventfdFileEntry = { id, flags: (fd.info.flags & ~O.CLOEXEC) | semaphore, fown: NO_FOWN, counter: counterOf(fd) };
    return efd;
  }

  openDescription(_ctx: RestoreContext, task: RestoreTask, efd: EventfdFileEntry): number {
    const remote = task.remote;
    const fd = remote.sys.eventfd2(0, efd.flags & (O.NONBLOCK | EFD_SEMAPHORE));
    // eventfd2 takes a 32-bit initial value; a write adds the full 64-bit count.
    if (efd.counter > 0n) {
      remote.resetData();
      const buf = Buffer.alloc(8);
      buf.writeBigUInt64LE(efd.counter);
      remote.sys.with('eventfd counter').write(fd, buf, 8);
      remote.resetData();
    }
    return fd;
  }

  compareDescription(live: FdResource, efd: EventfdFileEntry): FieldDifference[] {
    const out: FieldDifference[] = [];
    if (counterOf(live) !== efd.counter) out.push({ what: 'eventfd count', expected: `${efd.counter}`, actual: `${counterOf(live)}` });
    const sema = live.info.extra.get('eventfd-semaphore') === '1';
    if (sema !== ((efd.flags & EFD_SEMAPHORE) !== 0)) out.push({ what: 'eventfd semaphore', expected: `${!sema}`, actual: `${sema}` });
    return out;
  }
}
