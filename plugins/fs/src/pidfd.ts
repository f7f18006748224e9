import {
  AmberError, FDLESS_DUMP_HINT, FdType, NO_FOWN, O,
  type DumpContext, type DumpTask, type FdResource, type FieldDifference, type FileKind,
  type RestoreContext, type RestoreTask,
} from '@amber/core';
import { FS_FILES_PROTO } from './images';
import type { PidfdEntry } from './generated';

/** pidfd_open flags a pidfd keeps in its open flags: PIDFD_NONBLOCK (O_NONBLOCK), PIDFD_THREAD (O_EXCL). */
const PIDFD_FLAGS = O.NONBLOCK | 0o200;

const pidOf = (fd: FdResource) => Number(fd.info.extra.get('Pid') ?? '-1');

export class PidfdOfDeadProcessError extends AmberError {}

/**
 * pidfds: the process a pidfd refers to is found again by its pid. Restored tasks keep their pids,
 * so a pidfd of a task of the tree refers to the restored task; one of a process outside the tree
 * is reopened if that pid is alive at restore. A pidfd of a process that has exited (fdinfo Pid: -1)
 * is refused at dump: its exit status lives only in the kernel and cannot be made again.
 */
export class PidfdKind implements FileKind<PidfdEntry> {
  readonly fdType = FdType.PIDFD;
  readonly name = 'pidfd';
  readonly member = { field: 22, name: 'pidfd', protoFile: FS_FILES_PROTO, message: 'amberfs.PidfdEntry' };

  claims(fd: FdResource): boolean {
    return fd.link === 'anon_inode:[pidfd]';
  }

  dumpDescription(ctx: DumpContext, _task: DumpTask, fd: FdResource, id: number): PidfdEntry {
    const nspid = pidOf(fd);
    if (nspid <= 0) {
      throw new PidfdOfDeadProcessError(
        `fd ${fd.fd} of pid ${fd.pid} is a pidfd of a process that has exited, which amber cannot restore; nothing was changed ` +
          `and the process keeps running (${FDLESS_DUMP_HINT})`,
      );
    }
    if (!ctx.tasks.some((t) => t.pid === nspid || t.threads.includes(nspid))) {
      ctx.log.info(`fd ${fd.fd} of pid ${fd.pid}: pidfd of pid ${nspid}, outside the dumped tree: reopened by pid at restore`);
    }
    const pidfd: PidfdEntry = { id, ino: fd.ino, flags: fd.info.flags & ~O.CLOEXEC, nspid, fown: NO_FOWN };
    return pidfd;
  }

  openDescription(_ctx: RestoreContext, task: RestoreTask, p: PidfdEntry): number {
    const fd = task.remote.sysRaw.pidfd_open(p.nspid, p.flags & PIDFD_FLAGS);
    if (fd === -3 /* ESRCH */) {
      throw new AmberError(`pid ${task.pid}: pidfd ${p.id} refers to pid ${p.nspid}, which is outside the restored tree and not running any more`);
    }
    if (fd < 0) throw new AmberError(`pid ${task.pid}: pidfd_open(${p.nspid}) for pidfd ${p.id}: errno ${-fd}`);
    return fd;
  }

  compareDescription(live: FdResource, p: PidfdEntry): FieldDifference[] {
    const now = pidOf(live);
    return now === p.nspid ? [] : [{ what: 'pidfd process', expected: `pid ${p.nspid}`, actual: now > 0 ? `pid ${now}` : 'exited' }];
  }
}
