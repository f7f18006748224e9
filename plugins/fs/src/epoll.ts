import {
  AmberError, F, FdType, NO_FOWN, O, fetchFd, procRead,
  type DumpContext, type DumpTask, type FdResource, type FieldDifference,
  type FileKind, type RestoreContext, type RestoreTask,
} from '@amber/core';
import type { EventpollFileEntry, EventpollTfdEntry } from './generated';
import { FS_FILES_PROTO } from './images';

const EPOLL_CTL_ADD = 1;


/** The "tfd: N events: X data: Y pos:P ino:I sdev:D" lines of an epoll fd's fdinfo. */
export function parseEpollTargets(fdinfo: string, id: number): EventpollTfdEntry[] {
  const out: EventpollTfdEntry[] = [];
  const re = /^tfd:\s*(\d+)\s+events:\s*([0-9a-f]+)\s+data:\s*([0-9a-f]+)\s+pos:(\d+)\s+ino:([0-9a-f]+)\s+sdev:([0-9a-f]+)/gm;
  for (const m of fdinfo.matchAll(re)) {
    out.push({
      id, tfd: Number(m[1]), events: parseInt(m[2], 16), data: BigInt('0x' + m[3]), pos: BigInt(m[4]),
      inode: BigInt('0x' + m[5]), dev: parseInt(m[6], 16),
    });
  }
  return out;
}

/** epoll instances: re-created after every other fd, then each target registered again. */
export class EpollKind implements FileKind<EventpollFileEntry> {
  readonly fdType = FdType.EVENTPOLL;
  readonly name = 'epoll';
  readonly member = { field: 9, name: 'epfd', protoFile: FS_FILES_PROTO, message: 'amberfs.EventpollFileEntry' };
  readonly restoreOrder = 10;

  claims(fd: FdResource): boolean {
    return fd.link === 'anon_inode:[eventpoll]';
  }

  /**
   * A target is recorded under the number it was added with (fdinfo's tfd), but that fd may have
   * been closed, or reused for another file, while a dup keeps the target open: the core
   * (KCMP_EPOLL_TFD) finds which open fd of the task is the target, kept as src_fd. An epoll does
   * not keep its targets open (closing the last fd of a file drops it from every epoll), so a
   * target that no fd of the task holds is held by another task (a child that inherited it):
   * src_pid names that one.
   */
  dumpDescription(ctx: DumpContext, task: DumpTask, fd: FdResource, id: number): EventpollFileEntry {
    const tfd = parseEpollTargets(procRead(fd.pid, `fdinfo/${fd.fd}`), id);
    for (const t of tfd) {
      const sameInode = task.fds.filter((f) => f.ino === t.inode).map((f) => f.fd);
      const candidates = [...sameInode.filter((n) => n === t.tfd), ...sameInode.filter((n) => n !== t.tfd)];
      const found = ctx.objects.epollTarget(task.pid, fd.fd, t.tfd, candidates);
      if (found !== undefined) {
        if (found !== t.tfd) t.srcFd = found;
        continue;
      }
      for (const other of ctx.tasks) {
        if (other.pid === task.pid) continue;
        const theirs = other.fds.filter((f) => f.ino === t.inode).map((f) => f.fd);
        const held = ctx.objects.epollTarget(task.pid, fd.fd, t.tfd, theirs, other.pid);
        if (held === undefined) continue;
        Object.assign(t, { srcFd: held, srcPid: other.pid });
        break;
      }
      if (t.srcPid === undefined) {
        throw new AmberError(
          `fd ${fd.fd} of pid ${task.pid} is an epoll watching fd ${t.tfd} (inode ${t.inode}), which no open fd of the dumped ` +
            `tree holds any more (a process outside it does); amber cannot restore that target; nothing was changed`,
        );
      }
    }
    const epfd: EventpollFileEntry = { id, flags: fd.info.flags & ~O.CLOEXEC, fown: NO_FOWN, tfd };
    return epfd;
  }

  openDescription(ctx: RestoreContext, task: RestoreTask, epfd: EventpollFileEntry): number {
    const remote = task.remote;
    let fd = remote.sys.epoll_create1(0);
    const borrowed = epfd.tfd.filter((t) => t.srcFd !== undefined && t.srcPid === undefined);
    if (borrowed.length) {
      // the target numbers are used for a moment below: keep the epoll itself above them
      const above = Math.max(...borrowed.map((t) => t.tfd)) + 1;
      const high = remote.sys.fcntl(fd, F.DUPFD_CLOEXEC, above);
      remote.sys.close(fd);
      fd = high;
    }
    for (const t of epfd.tfd) {
      // held only by another task of the tree: registered in the post-open step
      if (t.srcPid === undefined || t.srcPid === task.pid) this.addTarget(task, fd, t, t.srcFd);
    }
    remote.resetData();
    return fd;
  }

  private addTarget(task: RestoreTask, epfd: number, t: EventpollTfdEntry, srcFd: number | undefined): void {
    const remote = task.remote;
    remote.resetData();
    const ev = Buffer.alloc(12); // struct epoll_event is packed on x86-64
    ev.writeUInt32LE(t.events >>> 0, 0);
    ev.writeBigUInt64LE(t.data, 4);
    const add = () => remote.sys.with(`target fd ${t.tfd}`).epoll_ctl(epfd, EPOLL_CTL_ADD, t.tfd, ev);
    if (srcFd === undefined) add();
    else this.addUnder(task, epfd, { ...t, srcFd }, add);
  }

  /**
   * Targets that only another task holds: once every fd table is filled, the epoll's task fetches
   * the target from that task and registers it under its number, as for a dup of its own.
   */
  postOpen(_ctx: RestoreContext, task: RestoreTask, entry: EventpollFileEntry, placed: number): void {
    for (const target of entry.tfd) {
      if (target.srcPid === undefined || target.srcPid === task.pid) continue;
      const remote = task.remote;
      // a copy of the epoll above the target's number, which may be the epoll's own by now
      const epfd = remote.sys.fcntl(placed, F.DUPFD_CLOEXEC, Math.max(placed, target.tfd) + 1);
      const fetched = fetchFd(remote, target.srcPid!, target.srcFd!);
      try {
        this.addTarget(task, epfd, target, fetched);
      } finally {
        remote.sys.close(fetched);
        remote.sys.close(epfd);
      }
    }
  }

  /**
   * Registers a target under its old number when that number is now closed or another file:
   * the target (src_fd) is dup'ed there for the epoll_ctl, then whatever held the number is put
   * back. The watch survives: epoll drops it only when the target file itself is released.
   */
  private addUnder(task: RestoreTask, epfd: number, t: EventpollTfdEntry, add: () => void): void {
    const remote = task.remote;
    const fdFlags = remote.sysRaw.fcntl(t.tfd, F.GETFD, 0);
    const occupant = fdFlags >= 0 ? remote.sys.fcntl(t.tfd, F.DUPFD_CLOEXEC, epfd + 1) : -1;
    remote.sys.with(`target fd ${t.tfd} from fd ${t.srcFd}`).dup3(t.srcFd!, t.tfd, O.CLOEXEC);
    add();
    if (occupant >= 0) {
      remote.sys.with(`fd ${t.tfd}`).dup3(occupant, t.tfd, fdFlags & 1 ? O.CLOEXEC : 0);
      remote.sys.close(occupant);
    } else {
      remote.sys.close(t.tfd);
    }
  }

  compareDescription(live: FdResource, epfd: EventpollFileEntry): FieldDifference[] {
    const show = (ts: EventpollTfdEntry[]) => ts.map((t) => `${t.tfd}:0x${t.events.toString(16)}:0x${t.data.toString(16)}`).sort().join(' ');
    const dumped = show(epfd.tfd);
    const now = show(parseEpollTargets(procRead(live.pid, `fdinfo/${live.fd}`), epfd.id));
    return dumped === now ? [] : [{ what: 'epoll targets', expected: `[${dumped}]`, actual: `[${now}]` }];
  }
}
