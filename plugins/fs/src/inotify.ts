import { closeSync, openSync, readFileSync, readlinkSync } from 'node:fs';
import {
  asTaskOrCaller,
  AmberError, FdType, NO_FOWN, O, SYS, procRead, syscallRaw, addressOf,
  type DumpContext, type DumpTask, type FdResource, type FieldDifference, type FileDescription, type FileKind, type InotifyFileEntry,
  type InotifyWdEntry, type RestoreContext, type RestoreTask,
} from '@amber/core';

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
  const mountFd = openSync(`/proc/${pid}/root${mount[4]}`, O.RDONLY | O.DIRECTORY);
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

/** A file handle as fh_entry stores it: 64-bit words. */
export function handleWords(handle: Buffer): bigint[] {
  const words: bigint[] = [];
  for (let i = 0; i < handle.length; i += 8) words.push(Buffer.concat([handle, Buffer.alloc(8)]).readBigUInt64LE(i));
  return words;
}

export class InotifyKind implements FileKind {
  readonly fdType = FdType.INOTIFY;
  readonly name = 'inotify';

  claims(fd: FdResource): boolean {
    return fd.link === 'anon_inode:inotify';
  }

  dumpDescription(_ctx: DumpContext, _task: DumpTask, fd: FdResource, id: number): FileDescription {
    const wd: InotifyWdEntry[] = parseInotifyWatches(procRead(fd.pid, `fdinfo/${fd.fd}`)).map((w) => {
      const words = handleWords(w.handle);
      return {
        id, iIno: w.ino, mask: w.mask, ignoredMask: w.ignoredMask, sDev: w.sdev, wd: w.wd,
        fHandle: { bytes: w.handle.length, type: w.handleType, handle: words, path: pathOfHandle(fd.pid, w, `inotify watch ${w.wd}`) },
      };
    });
    const ify: InotifyFileEntry = { id, flags: fd.info.flags & ~O.CLOEXEC, fown: NO_FOWN, wd };
    return { id, type: FdType.INOTIFY, ify };
  }

  /**
   * Watch descriptors are handed out in increasing order; to give a watch its old number, a
   * lower one is removed and the watch added again (each removal queues an IN_IGNORED event,
   * as it does for CRIU).
   */
  openDescription(_ctx: RestoreContext, task: RestoreTask, entry: FileDescription): number {
    const ify = entry.ify as InotifyFileEntry;
    const remote = task.remote;
    const fd = remote.call('inotify_init1', SYS.inotify_init1, [ify.flags & O.NONBLOCK]);
    for (const w of [...ify.wd].sort((a, b) => a.wd - b.wd)) {
      const path = w.fHandle.path ?? '';
      for (let tries = 0; ; tries++) {
        remote.resetData();
        const got = asTaskOrCaller(task, `watch ${path}`, () => remote.call('inotify_add_watch', SYS.inotify_add_watch, [fd, remote.stageString(path), w.mask], path));
        if (got === w.wd) break;
        if (got > w.wd || tries > 4096) throw new AmberError(`pid ${task.pid}: inotify watch on ${path} got number ${got}, not ${w.wd}`);
        remote.call('inotify_rm_watch', SYS.inotify_rm_watch, [fd, got]);
      }
    }
    remote.resetData();
    return fd;
  }

  compareDescription(live: FdResource, entry: FileDescription): FieldDifference[] {
    const ify = entry.ify as InotifyFileEntry;
    const show = (ws: { wd: number; ino: bigint; mask: number }[]) => ws.map((w) => `${w.wd}:${w.ino}:0x${w.mask.toString(16)}`).sort().join(' ');
    const dumped = show(ify.wd.map((w) => ({ wd: w.wd, ino: w.iIno, mask: w.mask })));
    const now = show(parseInotifyWatches(procRead(live.pid, `fdinfo/${live.fd}`)));
    return dumped === now ? [] : [{ what: 'inotify watches', expected: `[${dumped}]`, actual: `[${now}]` }];
  }
}
