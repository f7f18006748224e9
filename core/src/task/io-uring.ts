import { closeSync, readFileSync, readlinkSync } from 'node:fs';
import { SYS } from '../kernel/constants';
import { AmberError, errnoName } from '../kernel/errors';
import { addressOf, syscallRaw } from '../kernel/libc';
import { listChildren, listFds, listThreads, parseMaps, procRead, readStat } from './proc';

// io_uring's kernel workers (iou-sqp-<pid> polls a SQPOLL ring, iou-wrk-<pid> runs async work)
// are threads of the process: they show in /proc/PID/task and take PTRACE_SEIZE, but never stop
// for PTRACE_INTERRUPT, so a freeze that seizes them waits forever. A process that uses io_uring
// is therefore refused before any of its threads (or any other task of the tree) is seized.

/** task->flags bit of an io_uring worker, in field 9 of /proc/PID/task/TID/stat. */
export const PF_IO_WORKER = 0x10;

const RING_LINK = 'anon_inode:[io_uring]';

export interface IoUringWorker {
  tid: number;
  comm: string;
}

/** Where a process holds an io_uring: an fd, else a mapped ring (its fd closed), and its workers. */
export interface IoUringUse {
  pid: number;
  fd?: number;
  mappedAt?: bigint;
  workers: IoUringWorker[];
}

export class IoUringError extends AmberError {
  constructor(readonly use: IoUringUse) {
    const workers = use.workers.length
      ? `its kernel worker thread(s) ${use.workers.map((w) => `${w.tid} (${w.comm})`).join(', ')} never stop for ptrace`
      : 'its kernel workers would never stop for ptrace';
    const what =
      use.fd !== undefined
        ? `fd ${use.fd} of pid ${use.pid} is ${RING_LINK}: no plugin handles it, and ${workers}`
        : use.mappedAt !== undefined
          ? `pid ${use.pid} maps an io_uring ring at 0x${use.mappedAt.toString(16)} (its fd is closed): no plugin handles it, and ${workers}`
          : `pid ${use.pid} has io_uring worker thread(s) ${use.workers.map((w) => `${w.tid} (${w.comm})`).join(', ')}, ` +
            'which never stop for ptrace: no plugin handles io_uring';
    super(
      `${what}; nothing was changed and the process keeps running ` +
        `(amber cannot checkpoint a process that uses io_uring, whatever --only or --skip)`,
    );
  }
}

/** The io_uring threads of a process, by PF_IO_WORKER (comm alone could be set by anyone). */
export function ioUringWorkers(pid: number): IoUringWorker[] {
  const out: IoUringWorker[] = [];
  for (const tid of listThreads(pid)) {
    try {
      const st = readStat(pid, tid);
      if (st.flags & PF_IO_WORKER) out.push({ tid, comm: st.comm });
    } catch {
      // thread exited while we looked
    }
  }
  return out;
}

/** How pid uses io_uring, or undefined if it does not. Throws ProcError/ENOENT if pid is gone. */
export function findIoUring(pid: number): IoUringUse | undefined {
  const workers = ioUringWorkers(pid);
  const fd = listFds(pid).find((f) => f.link === RING_LINK)?.fd;
  if (fd !== undefined) return { pid, fd, workers };
  // the maps text is parsed only when it names a ring: a tree's dump asks this of every process
  const maps = procRead(pid, 'maps');
  const mapped = maps.includes(RING_LINK) ? parseMaps(maps).find((m) => m.path === RING_LINK) : undefined;
  if (mapped) return { pid, mappedAt: mapped.start, workers };
  if (workers.length) return { pid, workers };
  return undefined;
}

export function refuseIoUring(pid: number): void {
  const use = findIoUring(pid);
  if (use) throw new IoUringError(use);
}

/** A thread that is an io_uring worker, checked just before it would be seized. */
export function isIoUringWorker(pid: number, tid: number): boolean {
  try {
    return (readStat(pid, tid).flags & PF_IO_WORKER) !== 0;
  } catch {
    return false;
  }
}

/**
 * Looks at every process of the tree rooted at rootPid, without touching any, and refuses the
 * first that uses io_uring. A process that exits meanwhile is skipped (the freeze sees the rest).
 * Returns the pids looked at.
 */
export function refuseIoUringInTree(rootPid: number): Set<number> {
  const seen = new Set<number>();
  const queue = [rootPid];
  while (queue.length) {
    const pid = queue.shift()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    let children: number[];
    try {
      refuseIoUring(pid);
      children = listChildren(pid);
    } catch (e) {
      if (e instanceof IoUringError || pid === rootPid || stillThere(pid)) throw e;
      continue;
    }
    queue.push(...children);
  }
  return seen;
}

function stillThere(pid: number): boolean {
  try {
    readFileSync(`/proc/${pid}/stat`);
    return true;
  } catch {
    return false;
  }
}

const IORING_SETUP_SQPOLL = 1 << 1;
/** sizeof(struct io_uring_params); flags at 8, sq_thread_idle (ms) at 16. */
const IO_URING_PARAMS_SIZE = 120;

/**
 * For `amber check`: tries on amber itself what the refusal relies on, with a SQPOLL ring of its
 * own: its fd reads as anon_inode:[io_uring] and its poller thread carries PF_IO_WORKER.
 */
export function probeIoUringDetection(): { present: boolean; detail: string } {
  const params = Buffer.alloc(IO_URING_PARAMS_SIZE);
  params.writeUInt32LE(IORING_SETUP_SQPOLL, 8);
  params.writeUInt32LE(10, 16);
  const fd = syscallRaw(SYS.io_uring_setup, [1, addressOf(params)]);
  if (fd < 0) return { present: true, detail: `io_uring_setup with SQPOLL: ${errnoName(-fd)}; ring fds are still recognised by their link` };
  try {
    const link = readlinkSync(`/proc/self/fd/${fd}`);
    if (link !== RING_LINK) return { present: false, detail: `a ring fd reads as ${link}` };
    const workers = ioUringWorkers(process.pid);
    if (!workers.length) return { present: false, detail: 'the poller thread of a SQPOLL ring does not show PF_IO_WORKER' };
    return { present: true, detail: `a ring fd and its poller, thread ${workers[0].tid} with PF_IO_WORKER, seen in /proc` };
  } finally {
    closeSync(fd);
  }
}
