import {
  F, O, procRead,
  type DumpContext, type DumpTask, type FdResource, type FieldDifference, type FileKind, type FownEntry,
  type FileEntryMember, type RestoreContext, type RestoreTask,
} from '@amber/core';

const O_ASYNC = 0o20000;

/** A kind's member that carries `fown` (reg, pipe, efd...). */
interface OwnedPart {
  fown: FownEntry;
  flags?: number;
}

function ownedPart(entry: object): OwnedPart | undefined {
  const owned = (e: object): e is OwnedPart => 'fown' in e;
  return owned(entry) ? entry : undefined;
}

/**
 * F_SETOWN / F_SETSIG state of a description. fdinfo does not show it, so the task itself is
 * asked (injected fcntl F_GETOWN_EX and F_GETSIG). pid_type is the f_owner_ex type
 * (F_OWNER_TID 0, F_OWNER_PID 1, F_OWNER_PGRP 2); uid and euid are the dumping task's.
 */
export function dumpFown(task: DumpTask, fd: number): FownEntry | undefined {
  const remote = task.remote;
  remote.resetData();
  const owner = remote.reserve(8);
  remote.sys.with(`fd ${fd}`).fcntl(fd, F.GETOWN_EX, owner);
  const ex = remote.memory.read(owner, 8);
  remote.resetData();
  const signum = remote.sys.with(`fd ${fd}`).fcntl(fd, F.GETSIG, 0);
  const pid = ex.readInt32LE(4);
  if (pid === 0 && signum === 0) return undefined;
  const uids = (/^Uid:\s+(\d+)\s+(\d+)/m.exec(procRead(task.pid, 'status')) ?? ['', '0', '0']).map(Number);
  return { uid: uids[1], euid: uids[2], signum, pidType: ex.readInt32LE(0), pid };
}

function restoreFown(ctx: RestoreContext, task: RestoreTask, fd: number, part: OwnedPart): void {
  const { fown } = part;
  const remote = task.remote;
  if (fown.pid) {
    remote.resetData();
    const ex = Buffer.alloc(8);
    ex.writeInt32LE(fown.pidType, 0);
    ex.writeInt32LE(fown.pid, 4);
    const r = remote.sysRaw.fcntl(fd, F.SETOWN_EX, remote.stage(ex));
    remote.resetData();
    if (r < 0) ctx.log.warn(`pid ${task.pid}: fd owner ${fown.pid} (type ${fown.pidType}) not set again: errno ${-r}`);
  }
  if (fown.signum) remote.sys.with(`fd ${fd}`).fcntl(fd, F.SETSIG, fown.signum);
  // O_ASYNC is ignored by open(2) and the create calls: only F_SETFL turns it on.
  if ((part.flags ?? 0) & O_ASYNC) {
    const now = remote.sys.with(`fd ${fd}`).fcntl(fd, F.GETFL, 0);
    remote.sys.with(`fd ${fd}`).fcntl(fd, F.SETFL, now | O_ASYNC);
  }
}

/** A file kind whose descriptions also keep their owner and signal (F_SETOWN_EX / F_SETSIG) and O_ASYNC. */
export class OwnedKind<E extends object> implements FileKind<E> {
  readonly fdType: number;
  readonly name: string;
  readonly member: FileEntryMember;
  readonly restoreOrder?: number;

  constructor(private readonly kind: FileKind<E>) {
    this.fdType = kind.fdType;
    this.name = kind.name;
    this.member = kind.member;
    this.restoreOrder = kind.restoreOrder;
  }

  claims(fd: FdResource): boolean {
    return this.kind.claims(fd);
  }

  dumpDescription(ctx: DumpContext, task: DumpTask, fd: FdResource, id: number): E {
    const desc = this.kind.dumpDescription(ctx, task, fd, id);
    const part = ownedPart(desc);
    // O_PATH fds have no owner (fcntl F_GETOWN_EX fails on them with EBADF)
    if (part && !(fd.info.flags & O.PATH)) {
      const fown = dumpFown(task, fd.fd);
      if (fown) part.fown = fown;
    }
    return desc;
  }

  openDescription(ctx: RestoreContext, task: RestoreTask, entry: E, id: number): number {
    const fd = this.kind.openDescription(ctx, task, entry, id);
    const part = ownedPart(entry);
    if (part && (part.fown.pid || part.fown.signum || (part.flags ?? 0) & O_ASYNC)) restoreFown(ctx, task, fd, part);
    return fd;
  }

  compareDescription(live: FdResource, entry: E): FieldDifference[] {
    return this.kind.compareDescription?.(live, entry) ?? [];
  }
}
