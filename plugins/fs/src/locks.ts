import { F, procRead, type CompareContext, type Difference, type DumpContext, type RestoreContext } from '@amber/core';
import type { FileLockEntry } from './images';

const FL_POSIX = 1;
const FL_FLOCK = 2;
const FL_OFDLCK = 1024;
const F_RDLCK = 0;
const F_WRLCK = 1;
const LOCK_SH = 1;
const LOCK_EX = 2;
const LOCK_NB = 4;

/**
 * fdinfo's "lock:" lines: the locks taken through this fd's description (flock, OFD) or by its
 * owner through it (POSIX).
 */
export function parseFdLocks(fdinfo: string, pid: number, fd: number): FileLockEntry[] {
  const re = /^lock:\s*\d+:\s*(FLOCK|POSIX|OFDLCK)\s+\S+\s+(READ|WRITE)\s+(-?\d+)\s+\S+\s+(\d+)\s+(\d+|EOF)/gm;
  const out: FileLockEntry[] = [];
  for (const m of fdinfo.matchAll(re)) {
    const start = BigInt(m[4]);
    const len = m[5] === 'EOF' ? 0n : BigInt(m[5]) - start + 1n;
    out.push({ flag: m[1] === 'FLOCK' ? FL_FLOCK : m[1] === 'OFDLCK' ? FL_OFDLCK : FL_POSIX, type: m[2] === 'WRITE' ? F_WRLCK : F_RDLCK, pid, fd, start, len });
  }
  return out;
}

/** Every flock and POSIX lock the tasks hold, by the fd they hold it through (file-locks.img). */
export function dumpLocks(ctx: DumpContext): void {
  const all: FileLockEntry[] = [];
  const perDescription = new Set<string>();
  for (const task of ctx.tasks) {
    for (const fd of task.fds) {
      // the fdinfo read when the fds were listed, the tree frozen (its own locks cannot change)
      for (const lock of parseFdLocks(fd.info.text ?? procRead(task.pid, `fdinfo/${fd.fd}`), task.pid, fd.fd)) {
        // flock and OFD locks belong to the description: every fd of it, in every task, shows
        // them; each is taken once, through the first fd found.
        const key = `${lock.flag}:${fd.dev}:${fd.ino}:${fd.info.pos}:${lock.type}:${lock.start}:${lock.len}`;
        if (lock.flag !== FL_POSIX && perDescription.has(key)) continue;
        if (lock.flag !== FL_POSIX) perDescription.add(key);
        all.push(lock);
      }
    }
  }
  if (all.length) ctx.store.write('file-locks', 'file-locks', all);
  ctx.count('file locks', all.length);
}

/** Takes the locks again in the restored tasks, once their fds are in place. */
export function restoreLocks(ctx: RestoreContext): void {
  if (!ctx.store.has('file-locks')) return;
  const locks = ctx.store.read<FileLockEntry>('file-locks', 'file-locks').entries;
  for (const task of ctx.tasks) {
    const remote = task.remote;
    for (const l of locks.filter((x) => x.pid === task.pid)) {
      const what = `${l.flag === FL_FLOCK ? 'flock' : l.flag === FL_OFDLCK ? 'OFD lock' : 'POSIX lock'} on fd ${l.fd}`;
      if (l.flag === FL_FLOCK) {
        remote.sys.with(what).flock(l.fd, (l.type === F_WRLCK ? LOCK_EX : LOCK_SH) | LOCK_NB);
        continue;
      }
      remote.resetData();
      const fl = Buffer.alloc(32); // struct flock: short type, short whence, off_t start, off_t len, pid_t pid
      fl.writeInt16LE(l.type, 0);
      fl.writeInt16LE(0 /* SEEK_SET */, 2);
      fl.writeBigInt64LE(l.start, 8);
      fl.writeBigInt64LE(l.len, 16);
      // an OFD lock is held by the description whatever fd sets it; l_pid must be 0
      const cmd = l.flag === FL_OFDLCK ? F.OFD_SETLK : F.SETLK;
      remote.sys.with(what).fcntl(l.fd, cmd, remote.stage(fl));
      remote.resetData();
    }
  }
}

const LOCK_KIND: Record<number, string> = { [FL_POSIX]: 'POSIX lock', [FL_FLOCK]: 'flock', [FL_OFDLCK]: 'OFD lock' };

function describeLock(l: FileLockEntry): string {
  return `${l.type === F_WRLCK ? 'write' : 'read'} ${LOCK_KIND[l.flag] ?? `lock (flag ${l.flag})`} on bytes ${l.start}-${l.len ? `${l.start + l.len - 1n}` : 'EOF'}`;
}

/** Every dumped lock must be held again, through the same fd. */
export function compareLocks(ctx: CompareContext): Difference[] {
  if (!ctx.store.has('file-locks')) return [];
  const out: Difference[] = [];
  const live = new Map<string, string[]>();
  for (const l of ctx.store.read<FileLockEntry>('file-locks', 'file-locks').entries) {
    if (!ctx.pids.includes(l.pid)) continue;
    const key = `${l.pid}:${l.fd}`;
    if (!live.has(key)) {
      let held: FileLockEntry[] = [];
      try {
        held = parseFdLocks(procRead(l.pid, `fdinfo/${l.fd}`), l.pid, l.fd);
      } catch {
        // no such fd: every lock through it is missing
      }
      live.set(key, held.map(describeLock));
    }
    const want = describeLock(l);
    if (!live.get(key)!.includes(want)) {
      out.push({ plugin: 'fs', pid: l.pid, what: `fd ${l.fd} lock`, expected: want, actual: live.get(key)!.join(', ') || 'none' });
    }
  }
  return out;
}
