import {
  FdType, NO_FOWN, O, SYS, procRead,
  type DumpContext, type DumpTask, type EventpollFileEntry, type EventpollTfdEntry, type FdResource, type FieldDifference, type FileDescription,
  type FileKind, type RestoreContext, type RestoreTask,
} from '@amber/core';

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
export class EpollKind implements FileKind {
  readonly fdType = FdType.EVENTPOLL;
  readonly name = 'epoll';
  readonly restoreOrder = 10;

  claims(fd: FdResource): boolean {
    return fd.link === 'anon_inode:[eventpoll]';
  }

  dumpDescription(_ctx: DumpContext, _task: DumpTask, fd: FdResource, id: number): FileDescription {
    const tfd = parseEpollTargets(procRead(fd.pid, `fdinfo/${fd.fd}`), id);
    const epfd: EventpollFileEntry = { id, flags: fd.info.flags & ~O.CLOEXEC, fown: NO_FOWN, tfd };
    return { id, type: FdType.EVENTPOLL, epfd };
  }

  openDescription(_ctx: RestoreContext, task: RestoreTask, entry: FileDescription): number {
    const epfd = entry.epfd as EventpollFileEntry;
    const remote = task.remote;
    const fd = remote.call('epoll_create1', SYS.epoll_create1, [0]);
    for (const t of epfd.tfd) {
      remote.resetData();
      const ev = Buffer.alloc(12); // struct epoll_event is packed on x86-64
      ev.writeUInt32LE(t.events >>> 0, 0);
      ev.writeBigUInt64LE(t.data, 4);
      remote.call('epoll_ctl(ADD)', SYS.epoll_ctl, [fd, EPOLL_CTL_ADD, t.tfd, remote.stage(ev)], `target fd ${t.tfd}`);
    }
    remote.resetData();
    return fd;
  }

  compareDescription(live: FdResource, entry: FileDescription): FieldDifference[] {
    const epfd = entry.epfd as EventpollFileEntry;
    const show = (ts: EventpollTfdEntry[]) => ts.map((t) => `${t.tfd}:0x${t.events.toString(16)}:0x${t.data.toString(16)}`).sort().join(' ');
    const dumped = show(epfd.tfd);
    const now = show(parseEpollTargets(procRead(live.pid, `fdinfo/${live.fd}`), epfd.id));
    return dumped === now ? [] : [{ what: 'epoll targets', expected: `[${dumped}]`, actual: `[${now}]` }];
  }
}
