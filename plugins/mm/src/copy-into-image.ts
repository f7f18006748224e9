import { closeSync, constants, ftruncateSync, openSync, writev } from 'node:fs';
import { AmberError, KernelError, MAP, PROT, SIG, type RemoteSyscall } from '@amber/core';
import { copyThroughAmber, writeInFileOrder, type DumpSegment, type Segment } from './transfer';

/** How much of the pages file the task maps at a time while it copies. */
const WINDOW = 32 << 20;
/** Triples per copy-loop run: they are staged in the scratch data area. */
const TRIPLES_PER_RUN = 4096;
/** Below this the task copies everything itself: zeroing the back would not pay for its turns. */
const TWO_STREAMS_MIN = 64 << 20;

/**
 * Dumps pages by letting the task copy them itself into the image, while amber makes the back of
 * the file on another core. On this VM the first write to a page nobody used lately costs more
 * than the copy (the host backs guest memory lazily), and the task is one thread. So:
 * - the task maps the pages file (MAP_SHARED) a window at a time from the front and runs a
 *   `rep movsb` loop over its runs; runs it may not read (PROT_NONE, write-only) amber copies
 *   through /proc/PID/mem;
 * - meanwhile libuv threads write zeroes into the file from the back, a chunk at a time
 *   (BackZeroes), which takes the first touch of those pages;
 * - where the two meet, the task pwritev()s the rest over the zeroed pages.
 * write(2) takes the inode lock, the task's page faults on its window do not, so the two run
 * together. `taskFd` is the pages file opened O_RDWR in the task, `path` the same file for amber.
 * Undefined when the task has no room to map a window: nothing was copied, the file is empty.
 */
export async function copyIntoImage(
  remote: RemoteSyscall, taskFd: number, path: string, segments: DumpSegment[], progress?: (bytes: number) => void, log?: (line: string) => void,
): Promise<number | undefined> {
  const total = segments.reduce((n, s) => n + s.len, 0);
  const fd = openSync(path, constants.O_RDWR | constants.O_NOFOLLOW);
  ftruncateSync(fd, total);
  const back = new BackZeroes(fd, total, total >= TWO_STREAMS_MIN);
  let copied = false;
  try {
    copied = await remote.withCopyFaultsStopping(async () => {
      const runs = new SegmentCursor(segments);
      let front = 0;
      back.feed(front);
      while (front < back.low) {
        const len = Math.min(WINDOW, back.low - front);
        if (!copyWindow(remote, taskFd, fd, path, runs.take(len), front, front === 0)) return false;
        front += len;
        progress?.(len);
        back.feed(front);
        // lets the chunks' completions in, so the next ones are queued while the task copies on
        await new Promise<void>(setImmediate);
      }
      await back.settled();
      log?.(`pid ${remote.pid}: the task copied ${front} bytes into its windows; zeroes were written from byte ${front} up`);
      writeInFileOrder(remote, taskFd, path, runs.take(total - front), front, progress);
      return true;
    });
  } finally {
    await back.settled();
    if (!copied) ftruncateSync(fd, 0);
    closeSync(fd);
  }
  return copied ? total : undefined;
}

const CHUNK = 32 << 20;
/** Chunks queued at once: enough to keep one libuv thread writing while the task copies a window. */
const IN_FLIGHT = 3;

/**
 * Zeroes written into the back of the pages file by libuv threads, a chunk at a time, down to
 * where the task's copy is about to come. A failed chunk (ENOSPC, say) costs only speed: the
 * task's pwritev writes every byte of the back again and meets the same error itself.
 */
class BackZeroes {
  /** Where the zeroed back of the file begins: every chunk queued lies at or above it. */
  low: number;
  /** One MiB of zeroes, CHUNK / 1 MiB times over. */
  private readonly chunk = Array<Buffer>(CHUNK >> 20).fill(Buffer.alloc(1 << 20));
  private inFlight = 0;
  private waiters: (() => void)[] = [];

  constructor(
    private readonly fd: number,
    total: number,
    private readonly enabled: boolean,
  ) {
    this.low = total;
  }

  /** Queues chunks from the back while they stay a window clear of the task's copy at `front`. */
  feed(front: number): void {
    while (this.enabled && this.inFlight < IN_FLIGHT && this.low - CHUNK >= front + WINDOW) {
      const start = this.low - CHUNK;
      this.low = start;
      this.inFlight++;
      writev(this.fd, this.chunk, start, () => this.done());
    }
  }

  private done(): void {
    this.inFlight--;
    if (this.inFlight === 0) for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves once no chunk is being written. */
  settled(): Promise<void> {
    return this.inFlight === 0 ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }
}

/** Hands out a file's segments in order, a byte count at a time. */
class SegmentCursor {
  private seg = 0;
  private off = 0;

  constructor(private readonly segments: DumpSegment[]) {}

  take(bytes: number): DumpSegment[] {
    const out: DumpSegment[] = [];
    while (bytes > 0) {
      const s = this.segments[this.seg];
      const len = Math.min(s.len - this.off, bytes);
      out.push({ addr: s.addr + BigInt(this.off), len, readable: s.readable });
      bytes -= len;
      this.off += len;
      if (this.off === s.len) {
        this.seg++;
        this.off = 0;
      }
    }
    return out;
  }
}

/**
 * The task copies `runs` into one window of the pages file at `fileOff`; amber copies what it may
 * not read. False when the task has no room to map the window and `mayRefuse` (the first window:
 * nothing is copied yet, and writev does it all); later, no room is a KernelError.
 */
function copyWindow(remote: RemoteSyscall, taskFd: number, fd: number, path: string, runs: DumpSegment[], fileOff: number, mayRefuse: boolean): boolean {
  const winLen = runs.reduce((n, s) => n + s.len, 0);
  remote.resetData();
  const mapped = remote.sysRaw.mmap(0, winLen, PROT.READ | PROT.WRITE, MAP.SHARED, taskFd, fileOff);
  if (mapped < 0 && mapped > -4096) {
    // no room in the task's address space (RLIMIT_AS, say)
    if (mayRefuse) return false;
    throw new KernelError('mmap (pages window, in the task)', -mapped, remote.pid, path);
  }
  const win = BigInt(mapped);
  const triples = Buffer.alloc(Math.min(runs.length, TRIPLES_PER_RUN) * 24);
  try {
    let at = 0;
    for (let i = 0; i < runs.length; ) {
      let n = 0;
      const hidden: (Segment & { fileOff: number })[] = [];
      for (; i < runs.length && n < TRIPLES_PER_RUN; i++) {
        const r = runs[i];
        if (r.readable) {
          triples.writeBigUInt64LE(win + BigInt(at), n * 24);
          triples.writeBigUInt64LE(r.addr, n * 24 + 8);
          triples.writeBigUInt64LE(BigInt(r.len), n * 24 + 16);
          n++;
        } else {
          hidden.push({ addr: r.addr, len: r.len, fileOff: fileOff + at });
        }
        at += r.len;
      }
      remote.resetData();
      const fault = n ? remote.copyInTask(remote.stage(triples.subarray(0, n * 24)), n) : undefined;
      if (fault) throw new CopyFaultError(remote.pid, fault.signal, fault.address, path);
      for (const h of hidden) copyThroughAmber(remote, fd, [h], h.fileOff);
    }
  } finally {
    remote.sysRaw.munmap(win, winLen);
  }
  return true;
}

/** The task's copy into the pages file faulted: the file's filesystem is full, or memory went away. */
export class CopyFaultError extends AmberError {
  constructor(readonly pid: number, readonly signal: number, readonly address: bigint, readonly path: string) {
    const why = signal === SIG.BUS ? `SIGBUS (no room left for ${path}?)` : 'SIGSEGV (memory the task could not read)';
    super(`pid ${pid}: copying its pages into ${path} stopped at 0x${address.toString(16)}: ${why}; the task was not harmed`);
  }
}
