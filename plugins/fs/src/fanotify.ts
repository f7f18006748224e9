import { readFileSync } from 'node:fs';
import {
  asTaskOrCaller,
  AmberError, FdType, NO_FOWN, O, procRead,
  type DumpContext, type DumpTask, type FdResource, type FieldDifference,
  type FileKind, type RestoreContext, type RestoreTask,
} from '@amber/core';
import { FS_FILES_PROTO } from './images';
import type { FanotifyFileEntry, FanotifyMarkEntry } from './generated';
import { handleWords, pathOfHandle } from './inotify';

const MARK_INODE = 1;
const MARK_MOUNT = 2;
const FAN_MARK_ADD = 0x1;
const FAN_MARK_MOUNT = 0x10;
const FAN_MARK_IGNORED_MASK = 0x20;
const FAN_MARK_IGNORED_SURV_MODIFY = 0x40;
const FAN_MARK_IGNORE = 0x400;
const FAN_CLOEXEC = 0x1;
const AT_FDCWD = -100;

/** The "fanotify flags:X event-flags:Y" line: fanotify_init's flags and event_f_flags. */
function parseGroup(fdinfo: string): { faflags: number; evflags: number } {
  const m = /^fanotify flags:([0-9a-f]+) event-flags:([0-9a-f]+)/m.exec(fdinfo);
  return { faflags: m ? parseInt(m[1], 16) : 0, evflags: m ? parseInt(m[2], 16) : 0 };
}

/** Mount points by mount id, as `pid` sees them. */
function mountPoints(pid: number): Map<number, string> {
  const out = new Map<number, string>();
  for (const line of readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f.length > 4) out.set(Number(f[0]), f[4]);
  }
  return out;
}

/** The inode and mount marks of a fanotify fdinfo; a filesystem mark is refused. */
export function parseFanotifyMarks(fdinfo: string, id: number, pid: number, fd: number): FanotifyMarkEntry[] {
  const out: FanotifyMarkEntry[] = [];
  let mounts: Map<number, string> | undefined;
  for (const line of fdinfo.split('\n')) {
    if (!line.startsWith('fanotify ') || line.startsWith('fanotify flags:')) continue;
    const inode = /^fanotify ino:([0-9a-f]+) sdev:([0-9a-f]+) mflags:([0-9a-f]+) mask:([0-9a-f]+) ignored_mask:([0-9a-f]+) fhandle-bytes:([0-9a-f]+) fhandle-type:([0-9a-f]+) f_handle:([0-9a-f]+)/.exec(line);
    const mount = /^fanotify mnt_id:([0-9a-f]+) mflags:([0-9a-f]+) mask:([0-9a-f]+) ignored_mask:([0-9a-f]+)/.exec(line);
    if (inode) {
      const handle = Buffer.from(inode[8], 'hex');
      const sdev = parseInt(inode[2], 16);
      const ino = BigInt('0x' + inode[1]);
      const handleType = parseInt(inode[7], 16);
      const path = pathOfHandle(pid, { sdev, handle, handleType, ino }, `fanotify mark on fd ${fd}`);
      out.push({
        id, type: MARK_INODE, mflags: parseInt(inode[3], 16), mask: parseInt(inode[4], 16), ignoredMask: parseInt(inode[5], 16), sDev: sdev,
        ie: { iIno: ino, fHandle: { bytes: handle.length, type: handleType, handle: handleWords(handle), path } },
      });
    } else if (mount) {
      const mntId = parseInt(mount[1], 16);
      mounts ??= mountPoints(pid);
      const path = mounts.get(mntId);
      if (path === undefined) throw new AmberError(`fd ${fd} of pid ${pid}: fanotify mount mark on mount ${mntId}, which pid ${pid} does not see`);
      out.push({
        id, type: MARK_MOUNT, mflags: parseInt(mount[2], 16), mask: parseInt(mount[3], 16), ignoredMask: parseInt(mount[4], 16), sDev: 0,
        me: { mntId, path },
      });
    } else {
      throw new AmberError(`fd ${fd} of pid ${pid} is a fanotify group with a mark amber cannot restore (${line.trim()}); nothing was changed`);
    }
  }
  return out;
}

const showMarks = (marks: FanotifyMarkEntry[]) =>
  marks.map((m) => `${m.type === MARK_MOUNT ? `mount:${m.me?.path}` : `inode:${m.ie?.iIno}`}:0x${m.mask.toString(16)}/0x${m.ignoredMask.toString(16)}`)
    .sort().join(' ');

/** fanotify groups: fanotify_init with the same flags, then every inode and mount mark again. */
export class FanotifyKind implements FileKind<FanotifyFileEntry> {
  readonly fdType = FdType.FANOTIFY;
  readonly name = 'fanotify';
  readonly member = { field: 14, name: 'ffy', protoFile: FS_FILES_PROTO, message: 'amberfs.FanotifyFileEntry' };

  claims(fd: FdResource): boolean {
    return fd.link === 'anon_inode:[fanotify]';
  }

  dumpDescription(_ctx: DumpContext, _task: DumpTask, fd: FdResource, id: number): FanotifyFileEntry {
    const text = procRead(fd.pid, `fdinfo/${fd.fd}`);
    const ffy: FanotifyFileEntry = {
      id, flags: fd.info.flags & ~O.CLOEXEC, fown: NO_FOWN, ...parseGroup(text), mark: parseFanotifyMarks(text, id, fd.pid, fd.fd),
    };
    return ffy;
  }

  openDescription(_ctx: RestoreContext, task: RestoreTask, ffy: FanotifyFileEntry): number {
    const remote = task.remote;
    const fd = remote.sys.fanotify_init(ffy.faflags & ~FAN_CLOEXEC, ffy.evflags);
    for (const m of ffy.mark) {
      const path = (m.type === MARK_MOUNT ? m.me?.path : m.ie?.fHandle.path) ?? '';
      const where = m.type === MARK_MOUNT ? FAN_MARK_MOUNT : 0;
      const add = (flags: number, mask: number) => {
        remote.resetData();
        asTaskOrCaller(task, `mark ${path}`, () => remote.sys.fanotify_mark(fd, FAN_MARK_ADD | where | flags, mask, AT_FDCWD, path));
      };
      // mflags are FAN_MARK_* flags: IGNORED_SURV_MODIFY (0x40) only goes with the ignored mask
      if (m.mask) add(m.mflags & ~(FAN_MARK_IGNORED_SURV_MODIFY | FAN_MARK_IGNORE), m.mask);
      if (m.ignoredMask) add((m.mflags & ~FAN_MARK_IGNORE) | FAN_MARK_IGNORED_MASK, m.ignoredMask);
    }
    remote.resetData();
    return fd;
  }

  compareDescription(live: FdResource, ffy: FanotifyFileEntry): FieldDifference[] {
    const text = procRead(live.pid, `fdinfo/${live.fd}`);
    const out: FieldDifference[] = [];
    const g = parseGroup(text);
    if (g.faflags !== ffy.faflags) out.push({ what: 'fanotify flags', expected: `0x${ffy.faflags.toString(16)}`, actual: `0x${g.faflags.toString(16)}` });
    const dumped = showMarks(ffy.mark);
    const now = showMarks(parseFanotifyMarks(text, ffy.id, live.pid, live.fd));
    if (dumped !== now) out.push({ what: 'fanotify marks', expected: `[${dumped}]`, actual: `[${now}]` });
    return out;
  }
}
