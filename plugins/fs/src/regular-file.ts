import {
  FdType, isOnMqueueFs, NO_FOWN, O, openAsTask, REG_MEMBER, SEEK_SET, SYS,
  type DumpContext, type DumpTask, type FdResource, type FieldDifference, type FileKind, type RegFileEntry,
  type RestoreContext, type RestoreTask,
} from '@amber/core';
import { constants } from 'node:fs';
import { dumpGhost, hasGhost, isUnlinked, openGhost, originalPath } from './ghost-file';
import { dumpGhostDevice, isDevice, openGhostDevice } from './ghost-device';

/** Character devices that are the same everywhere and carry no state of their own. */
const PLAIN_DEVICES = new Set(['/dev/null', '/dev/zero', '/dev/full', '/dev/random', '/dev/urandom']);
const FLAGS_NOT_REPLAYED = O.CREAT | O.EXCL | O.TRUNC | O.NOCTTY | O.CLOEXEC;

/**
 * Regular files, directories, O_PATH fds and the memory-like character devices, by path; an
 * unlinked regular file is saved whole (a ghost file) and re-created on restore, as is the node of
 * a removed device.
 */
export class RegularFileKind implements FileKind<RegFileEntry> {
  readonly fdType = FdType.REG;
  readonly name = 'regular file';
  readonly member = REG_MEMBER;

  claims(fd: FdResource): boolean {
    if (!fd.link.startsWith('/') || fd.link.startsWith('/memfd:')) return false;
    if ((fd.mode & constants.S_IFMT) === constants.S_IFREG && isOnMqueueFs(`/proc/${fd.pid}/fd/${fd.fd}`)) return false; // the ipc plugin's
    const type = fd.mode & constants.S_IFMT;
    if (isUnlinked(fd.link)) return (type === constants.S_IFREG || isDevice(fd.mode)) && !(fd.info.flags & O.PATH);
    if (type === constants.S_IFREG || type === constants.S_IFDIR) return true;
    if (fd.info.flags & O.PATH) return true;
    return type === constants.S_IFCHR && PLAIN_DEVICES.has(fd.link);
  }

  dumpDescription(ctx: DumpContext, _task: DumpTask, fd: FdResource, id: number): RegFileEntry {
    const unlinked = isUnlinked(fd.link);
    if (unlinked) (isDevice(fd.mode) ? dumpGhostDevice : dumpGhost)(ctx, fd, id);
    const reg: RegFileEntry = {
      id, flags: fd.info.flags & ~O.CLOEXEC, pos: fd.info.pos, fown: NO_FOWN, name: unlinked ? originalPath(fd.link) : fd.link,
      mntId: fd.info.mntId, size: fd.size, mode: fd.mode, buildId: [],
    };
    return reg;
  }

  openDescription(ctx: RestoreContext, task: RestoreTask, reg: RegFileEntry): number {
    const remote = task.remote;
    remote.resetData();
    const ghost = hasGhost(ctx, reg.id) ? (isDevice(reg.mode ?? 0) ? openGhostDevice : openGhost) : undefined;
    const fd = ghost ? ghost(ctx, task, reg) : openAsTask(task, reg.name, reg.flags & ~FLAGS_NOT_REPLAYED);
    if (reg.pos !== 0n && !(reg.flags & O.PATH)) remote.sys.with(reg.name).lseek(fd, reg.pos, SEEK_SET);
    return fd;
  }

  compareDescription(live: FdResource, reg: RegFileEntry): FieldDifference[] {
    const out: FieldDifference[] = [];
    const flags = live.info.flags & ~O.CLOEXEC;
    const link = isUnlinked(live.link) ? originalPath(live.link) : live.link;
    if (link !== reg.name) out.push({ what: 'path', expected: reg.name, actual: link });
    if (flags !== reg.flags) out.push({ what: 'flags', expected: `0${reg.flags.toString(8)}`, actual: `0${flags.toString(8)}` });
    if (live.info.pos !== reg.pos) out.push({ what: 'offset', expected: String(reg.pos), actual: String(live.info.pos) });
    return out;
  }
}
