import { F, O } from '../kernel/constants';
import { procRead } from '../task/proc';
import type { FownEntry } from '../images';
import type { Logger } from './logger';
import type { DumpTask, FdResource, RestoreTask } from './plugin';

const O_ASYNC = 0o20000;

// In CRIU every kind gets its owner from the generic fd parameters: here the core dumps it for every
// fd (FdResource.fown) and puts it back once the fd table is filled (after post-open), whatever the kind.

/** The part of a kind's member that carries `fown` (reg, pipe, efd...), if the member has one. */
export interface OwnedPart {
  fown: FownEntry;
  flags?: number;
}

export function ownedPart(entry: object): OwnedPart | undefined {
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

export function restoreFown(log: Logger, task: RestoreTask, fd: number, part: OwnedPart): void {
  const { fown } = part;
  const remote = task.remote;
  if (fown.pid) {
    remote.resetData();
    const ex = Buffer.alloc(8);
    ex.writeInt32LE(fown.pidType, 0);
    ex.writeInt32LE(fown.pid, 4);
    const r = remote.sysRaw.fcntl(fd, F.SETOWN_EX, remote.stage(ex));
    remote.resetData();
    if (r < 0) log.warn(`pid ${task.pid}: fd owner ${fown.pid} (type ${fown.pidType}) not set again: errno ${-r}`);
  }
  if (fown.signum) remote.sys.with(`fd ${fd}`).fcntl(fd, F.SETSIG, fown.signum);
  // O_ASYNC is ignored by open(2) and the create calls: only F_SETFL turns it on.
  if ((part.flags ?? 0) & O_ASYNC) {
    const now = remote.sys.with(`fd ${fd}`).fcntl(fd, F.GETFL, 0);
    remote.sys.with(`fd ${fd}`).fcntl(fd, F.SETFL, now | O_ASYNC);
  }
}

/**
 * The owner of fd as dumped: F_GETOWN_EX / F_GETSIG asked in the task, undefined when it has none
 * or is an O_PATH fd (fcntl F_GETOWN_EX fails on those with EBADF).
 */
export function fownOf(task: DumpTask, fd: FdResource): FownEntry | undefined {
  return fd.info.flags & O.PATH ? undefined : dumpFown(task, fd.fd);
}

/** Puts the dumped owner in the sub-message that carries one, whatever the kind wrote there. */
export function recordFown(desc: object, fown: FownEntry | undefined): void {
  const part = ownedPart(desc);
  if (part && fown) part.fown = fown;
}

/** Sets owner, signal and O_ASYNC on a freshly opened description, if it had any. */
export function applyFown(log: Logger, task: RestoreTask, fd: number, desc: object): void {
  const part = ownedPart(desc);
  if (part && (part.fown.pid || part.fown.signum || (part.flags ?? 0) & O_ASYNC)) restoreFown(log, task, fd, part);
}
