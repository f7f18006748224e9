import { closeSync, openSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import {
  asTaskOrCaller,
  AmberError, FdType, NO_FOWN, O, SYS, procRead, syscallRaw, addressOf, takeFd,
  type DumpContext, type DumpTask, type FdResource, type FieldDifference, type FileKind,
  type RestoreContext, type RestoreTask,
} from '@amber/core';
import { FS_FILES_PROTO } from './images';
import type { InotifyFileEntry, InotifyWdEntry } from './generated';

interface WatchLine {
  wd: number;
  ino: bigint;
  sdev: number;
  mask: number;
  ignoredMask: number;
  handleType: number;
  handle: Buffer;
}

export function parseInotifyWatches(fdinfo: string): WatchLine[] {
  const re = /^inotify wd:(\d+) ino:([0-9a-f]+) sdev:([0-9a-f]+) mask:([0-9a-f]+) ignored_mask:([0-9a-f]+) fhandle-bytes:([0-9a-f]+) fhandle-type:([0-9a-f]+) f_handle:([0-9a-f]+)/gm;
  return [...fdinfo.matchAll(re)].map((m) => ({
    wd: Number(m[1]), ino: BigInt('0x' + m[2]), sdev: parseInt(m[3], 16), mask: parseInt(m[4], 16),
    ignoredMask: parseInt(m[5], 16), handleType: parseInt(m[7], 16), handle: Buffer.from(m[8], 'hex'),
  }));
}

/**
 * The watched inode's path, from its file handle: open_by_handle_at on the mount of its
 * superblock (fdinfo's sdev is the kernel's dev_t: major << 20 | minor).
 */
export function pathOfHandle(pid: number, w: Pick<WatchLine, 'sdev' | 'handle' | 'handleType' | 'ino'>, what: string): string {
  const devText = `${w.sdev >>> 20}:${w.sdev & 0xfffff}`;
  const mount = readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n').map((l) => l.split(' '))
    .find((f) => f[2] === devText && f[3] === '/');
  if (!mount) throw new AmberError(`pid ${pid}: ${what} is on device ${devText}, which has no mount of its root`);
  const mountFd = mountAnchor(pid, Number(mount[0])) ?? openSync(`/proc/${pid}/root${mount[4]}`, O.RDONLY | O.DIRECTORY);
  try {
    const fh = Buffer.alloc(8 + w.handle.length);
    fh.writeUInt32LE(w.handle.length, 0);
    fh.writeInt32LE(w.handleType, 4);
    w.handle.copy(fh, 8);
    const fd = syscallRaw(SYS.open_by_handle_at, [mountFd, addressOf(fh), O.PATH]);
    if (fd < 0) throw new AmberError(`pid ${pid}: cannot find the path of ${what} (inode ${w.ino}): errno ${-fd}`);
    try {
      return readlinkSync(`/proc/self/fd/${fd}`);
    } finally {
      closeSync(fd);
    }
  } finally {
    closeSync(mountFd);
  }
}

/**
 * An fd on mount mountId for open_by_handle_at, unseen by the task: amber's copy of one of the
 * task's own descriptions on that mount (an O_PATH fd will not do: the call takes only real
 * opens). Opening the mount's root instead raises FAN_OPEN / IN_OPEN and a close event there,
 * which a task watching that directory would read; that is the fallback when it holds none.
 */
function mountAnchor(pid: number, mountId: number): number | undefined {
  let names: string[];
  try {
    names = readdirSync(`/proc/${pid}/fdinfo`);
  } catch {
    return undefined;
  }
  for (const name of names) {
    let info: string;
    try {
      info = readFileSync(`/proc/${pid}/fdinfo/${name}`, 'utf8');
    } catch {
      continue;
    }
    const mnt = /^mnt_id:\s+(\d+)/m.exec(info);
    const flags = /^flags:\s+([0-7]+)/m.exec(info);
    if (!mnt || Number(mnt[1]) !== mountId || !flags || (parseInt(flags[1], 8) & O.PATH)) continue;
    try {
      return takeFd(pid, Number(name));
    } catch {
      continue;
    }
  }
  return undefined;
}

/** A file handle as fh_entry stores it: 64-bit words. */
export function handleWords(handle: Buffer): bigint[] {
  const words: bigint[] = [];
  for (let i = 0; i < handle.length; i += 8) words.push(Buffer.concat([handle, Buffer.alloc(8)]).readBigUInt64LE(i));
  return words;
}

/** st_dev as glibc encodes it, as the kernel's internal dev_t (fdinfo's sdev): major << 20 | minor. */
export function kernelDev(dev: bigint): number {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return Number((major << 20n) | minor);
}

const DELETED = ' (deleted)';
// lookup-only flags: the watch is re-added through /proc/self/fd/N, a link to follow
const IN_LOOKUP_FLAGS = 0x01000000 /* ONLYDIR */ | 0x02000000 /* DONT_FOLLOW */ | 0x10000000 /* MASK_CREATE */ | 0x20000000 /* MASK_ADD */;

export class InotifyWatchOfRemovedFileError extends AmberError {}

export class InotifyKind implements FileKind<InotifyFileEntry> {
  readonly fdType = FdType.INOTIFY;
  readonly name = 'inotify';
  readonly member = { field: 13, name: 'ify', protoFile: FS_FILES_PROTO, message: 'amberfs.InotifyFileEntry' };
  /** After the files a watch may need (a removed file is watched through the task's fd of it). */
  readonly restoreOrder = 5;

  claims(fd: FdResource): boolean {
    return fd.link === 'anon_inode:inotify';
  }

  /**
   * A watch lives as long as its inode, so a watched file removed since is still open somewhere
   * (the kernel drops the watch when the inode goes). When the task holds it, the watch is re-added
   * through that fd on restore, after the file (a ghost) is re-created.
   */
  dumpDescription(_ctx: DumpContext, task: DumpTask, fd: FdResource, id: number): InotifyFileEntry {
    const wd: InotifyWdEntry[] = parseInotifyWatches(procRead(fd.pid, `fdinfo/${fd.fd}`)).map((w) => {
      const words = handleWords(w.handle);
      let path = pathOfHandle(fd.pid, w, `inotify watch ${w.wd}`);
      let openFd: number | undefined;
      if (path.endsWith(DELETED)) {
        path = path.slice(0, -DELETED.length);
        openFd = task.fds.find((f) => f.ino === w.ino && kernelDev(f.dev) === w.sdev && !f.link.startsWith('anon_inode:'))?.fd;
        if (openFd === undefined) {
          throw new InotifyWatchOfRemovedFileError(
            `fd ${fd.fd} of pid ${fd.pid} is an inotify watching ${path} (inode ${w.ino}), removed since and not open in pid ` +
              `${fd.pid}; amber cannot restore that watch; nothing was changed`,
          );
        }
      }
      const entry: InotifyWdEntry = {
        id, iIno: w.ino, mask: w.mask, ignoredMask: w.ignoredMask, sDev: w.sdev, wd: w.wd,
        fHandle: { bytes: w.handle.length, type: w.handleType, handle: words, path },
      };
      if (openFd !== undefined) entry.openFd = openFd;
      return entry;
    });
    const ify: InotifyFileEntry = { id, flags: fd.info.flags & ~O.CLOEXEC, fown: NO_FOWN, wd };
    return ify;
  }

  /**
   * Watch descriptors are handed out in increasing order; to give a watch its old number, a
   * lower one is removed and the watch added again (each removal queues an IN_IGNORED event,
   * as it does for CRIU).
   */
  openDescription(_ctx: RestoreContext, task: RestoreTask, ify: InotifyFileEntry): number {
    const remote = task.remote;
    const fd = remote.sys.inotify_init1(ify.flags & O.NONBLOCK);
    for (const w of [...ify.wd].sort((a, b) => a.wd - b.wd)) {
      const path = w.openFd !== undefined ? `/proc/self/fd/${w.openFd}` : w.fHandle.path ?? '';
      const mask = w.openFd !== undefined ? w.mask & ~IN_LOOKUP_FLAGS : w.mask;
      for (let tries = 0; ; tries++) {
        remote.resetData();
        const got = asTaskOrCaller(task, `watch ${path}`, () => remote.sys.inotify_add_watch(fd, path, mask));
        if (got === w.wd) break;
        if (got > w.wd || tries > 4096) throw new AmberError(`pid ${task.pid}: inotify watch on ${path} got number ${got}, not ${w.wd}`);
        remote.sys.inotify_rm_watch(fd, got);
      }
    }
    remote.resetData();
    return fd;
  }

  compareDescription(live: FdResource, ify: InotifyFileEntry): FieldDifference[] {
    const show = (ws: { wd: number; ino: bigint; mask: number }[]) => ws.map((w) => `${w.wd}:${w.ino}:0x${w.mask.toString(16)}`).sort().join(' ');
    // a removed file comes back as a new inode: the watch must be on the one the task's fd holds
    const inoNow = (w: InotifyWdEntry) => {
      if (w.openFd === undefined) return w.iIno;
      return statSync(`/proc/${live.pid}/fd/${w.openFd}`, { bigint: true, throwIfNoEntry: false })?.ino ?? w.iIno;
    };
    const dumped = show(ify.wd.map((w) => ({ wd: w.wd, ino: inoNow(w), mask: w.mask })));
    const now = show(parseInotifyWatches(procRead(live.pid, `fdinfo/${live.fd}`)));
    return dumped === now ? [] : [{ what: 'inotify watches', expected: `[${dumped}]`, actual: `[${now}]` }];
  }
}
