import { closeSync, constants, ftruncateSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { AmberError, IOV_MAX, KernelError, MAP, O, PROT, SIG, SYS, syscallAsync, type RemoteSyscall, type TableCall } from '@amber/core';

import type { PopulateJob } from './populate-worker';

const EOPNOTSUPP = 95;

export interface Segment {
  addr: bigint;
  len: number;
}

const MAX_BYTES_PER_CALL = 1 << 30;

/**
 * Moves task memory to or from a file with writev/preadv injected into the task itself, so the
 * kernel copies pages straight between the task and the page cache: amber never holds them.
 * Up to IOV_MAX segments per call.
 */
export function transfer(
  remote: RemoteSyscall,
  op: 'writev' | 'preadv',
  fd: number,
  segments: Segment[],
  fileOffset = 0,
  progress?: (bytes: number) => void,
): number {
  let idx = 0;
  let off = 0;
  let total = 0;
  const iov = Buffer.alloc(IOV_MAX * 16);
  while (idx < segments.length) {
    let count = 0;
    let bytes = 0;
    for (let i = idx, o = off; i < segments.length && count < IOV_MAX && bytes < MAX_BYTES_PER_CALL; i++, o = 0) {
      const len = Math.min(segments[i].len - o, MAX_BYTES_PER_CALL - bytes);
      iov.writeBigUInt64LE(segments[i].addr + BigInt(o), count * 16);
      iov.writeBigUInt64LE(BigInt(len), count * 16 + 8);
      bytes += len;
      count++;
    }
    remote.resetData();
    const iovAddr = remote.stage(iov.subarray(0, count * 16));
    const n =
      op === 'writev'
        ? remote.sys.with('pages').writev(fd, iovAddr, count)
        : remote.sys.with('pages').preadv(fd, iovAddr, count, fileOffset + total, 0);
    if (n === 0) throw new Error(`${op} of pages in pid ${remote.pid} made no progress`);
    total += n;
    progress?.(n);
    // advance (idx, off) by n bytes
    let left = n;
    while (left > 0) {
      const rest = segments[idx].len - off;
      if (left >= rest) {
        left -= rest;
        idx++;
        off = 0;
      } else {
        off += left;
        left = 0;
      }
    }
  }
  return total;
}

/** A stretch of a pages file read in order into task memory. */
export interface Stretch {
  segments: Segment[];
  fileOffset: number;
}

/**
 * preadv of every stretch from `fd` into the task, the small ones (one call each) together in one
 * stop; a stretch read short, or too big for one call, goes on through transfer().
 */
const bytesOf = (s: Stretch) => s.segments.reduce((n, g) => n + g.len, 0);
/** A stretch one preadv takes whole. */
const fitsOneCall = (s: Stretch) => s.segments.length <= IOV_MAX && bytesOf(s) <= MAX_BYTES_PER_CALL;

export function readStretches(remote: RemoteSyscall, fd: number, stretches: Stretch[], progress?: (bytes: number) => void): number {
  const small = stretches.filter(fitsOneCall);
  let total = 0;
  const rest: Stretch[] = stretches.filter((s) => !small.includes(s));
  if (small.length > 1) {
    remote.resetData();
    const calls = small.map((s): TableCall => ({ name: 'preadv', args: [fd, iovOf(s.segments), s.segments.length, s.fileOffset, 0], detail: 'pages' }));
    const read = remote.invokeMany(calls);
    remote.resetData();
    small.forEach((s, i) => {
      const n = read[i];
      total += n;
      if (n) progress?.(n);
      if (n < bytesOf(s)) rest.push(unread(s, n));
    });
  } else rest.push(...small);
  for (const s of rest) total += transfer(remote, 'preadv', fd, s.segments, s.fileOffset, progress);
  return total;
}

/**
 * The task opens the pages file at `path` (as whoever it is now: amber, until its credentials are
 * restored), reads every stretch small enough for one preadv, and closes it, in one stop with
 * `before` (best-effort calls, run first). Returns the bytes read, what is left for readStretches
 * (stretches read short or too big for one call), and how many of `before` ran: when one of them
 * failed, nothing after it ran, and all the stretches are left.
 */
export function openAndReadStretches(
  remote: RemoteSyscall, path: string, stretches: Stretch[], before: TableCall[], progress?: (bytes: number) => void,
): { bytes: number; rest: Stretch[]; beforeRan: number } {
  const small = stretches.filter(fitsOneCall);
  const rest = stretches.filter((s) => !fitsOneCall(s));
  const openAt = before.length;
  const fromOpen = [{ arg: 0, call: openAt }];
  remote.resetData();
  const calls: TableCall[] = [
    ...before,
    { name: 'open', args: [path, O.RDONLY | O.CLOEXEC, 0], detail: path },
    ...small.map((s): TableCall => ({ name: 'preadv', args: [0, iovOf(s.segments), s.segments.length, s.fileOffset, 0], argsFrom: fromOpen, detail: 'pages' })),
    { name: 'close', args: [0], argsFrom: fromOpen },
  ];
  const { results, error } = remote.runCalls(calls);
  remote.resetData();
  if (error) {
    const failed = results.filter((r) => r !== undefined).length - 1;
    if (failed < openAt) return { bytes: 0, rest: stretches, beforeRan: failed };
    // the reads stopped: the fd is still open
    if (failed > openAt && failed < calls.length - 1) remote.sysRaw.close(results[openAt]!);
    if (failed < calls.length - 1) throw error;
  }
  let bytes = 0;
  small.forEach((s, i) => {
    const n = results[openAt + 1 + i]!;
    bytes += n;
    if (n) progress?.(n);
    if (n < bytesOf(s)) rest.push(unread(s, n));
  });
  return { bytes, rest, beforeRan: before.length };
}

function iovOf(segments: Segment[]): Buffer {
  const iov = Buffer.alloc(segments.length * 16);
  segments.forEach((g, i) => {
    iov.writeBigUInt64LE(g.addr, i * 16);
    iov.writeBigUInt64LE(BigInt(g.len), i * 16 + 8);
  });
  return iov;
}

/** What of a stretch is left after its first n bytes. */
function unread(s: Stretch, n: number): Stretch {
  return { segments: segmentsAfter(s.segments, n), fileOffset: s.fileOffset + n };
}

/** The segments that remain once the first n bytes of them are done. */
export function segmentsAfter(segments: Segment[], n: number): Segment[] {
  const left: Segment[] = [];
  let skip = n;
  for (const g of segments) {
    if (skip >= g.len) {
      skip -= g.len;
      continue;
    }
    left.push({ addr: g.addr + BigInt(skip), len: g.len - skip });
    skip = 0;
  }
  return left;
}

const COPY_CHUNK = 8 << 20;

/**
 * amber copies task memory into the pages file itself, through /proc/PID/mem and one reused
 * buffer: at `fileOff`, or appended (null). The path for a task that cannot open the image
 * (another user, another mount namespace) and for memory the task may not read itself
 * (PROT_NONE): /proc/PID/mem reads that too.
 */
export function copyThroughAmber(
  remote: RemoteSyscall, fd: number, segments: Segment[], fileOff: number | null, progress?: (bytes: number) => void,
): number {
  const buf = Buffer.allocUnsafe(Math.min(COPY_CHUNK, segments.reduce((m, s) => Math.max(m, s.len), 0)));
  let total = 0;
  for (const seg of segments) {
    for (let off = 0; off < seg.len; ) {
      const n = Math.min(buf.length, seg.len - off);
      remote.memory.readInto(seg.addr + BigInt(off), buf, n);
      writeSync(fd, buf, 0, n, fileOff === null ? null : fileOff + total);
      off += n;
      total += n;
      progress?.(n);
    }
  }
  return total;
}

/** A run of pages to dump, and whether the task itself may read it (its VMA has PROT_READ). */
export interface DumpSegment extends Segment {
  readable: boolean;
}

/** How much of the pages file the task maps at a time while it copies. */
const WINDOW = 64 << 20;
/** Triples per copy-loop run: they are staged in the scratch data area. */
const TRIPLES_PER_RUN = 4096;

/**
 * Dumps pages by letting the task copy them itself into the image: it maps the pages file
 * (MAP_SHARED) a window at a time and runs a `rep movsb` loop over its runs; amber meanwhile
 * allocates the file's pages with fallocate on another core. Measured on this VM, for 1 GiB into
 * tmpfs: writev from the task takes 0.36–2.8 s from run to run, this path ~0.4–0.5 s. Runs in
 * memory the task cannot read (PROT_NONE, write-only) are copied through /proc/PID/mem by amber.
 * `taskFd` is the pages file opened O_RDWR in the task, `path` the same file for amber.
 * Undefined when the task has no room to map a window: nothing was copied, the file is empty.
 */
export async function copyIntoImage(
  remote: RemoteSyscall, taskFd: number, path: string, segments: DumpSegment[], progress?: (bytes: number) => void, log?: (line: string) => void,
): Promise<number | undefined> {
  const total = segments.reduce((n, s) => n + s.len, 0);
  const fd = openSync(path, constants.O_RDWR | constants.O_NOFOLLOW);
  ftruncateSync(fd, total);
  // Allocating the file's pages is a good share of the work and needs no data: another core does it.
  const allocation = syscallAsync(SYS.fallocate, [fd, 0, 0, total]);
  const front = new BigInt64Array(new SharedArrayBuffer(8));
  const helper = total >= HELPER_MIN ? startPopulating(path, total, front) : undefined;
  if (helper) log?.(`pid ${remote.pid}: a worker thread writes the pages file from the back`);
  let allocated = 0;
  let copied = false;
  try {
    copied = await remote.withCopyFaultsStopping(async () => copyWindows(remote, taskFd, fd, path, segments, front, progress));
  } finally {
    Atomics.store(front, 0, BigInt(total));
    allocated = await allocation;
    await helper;
    if (!copied) ftruncateSync(fd, 0);
    closeSync(fd);
  }
  if (allocated < 0 && allocated !== -EOPNOTSUPP) throw new KernelError('fallocate (pages)', -allocated, remote.pid, path);
  return copied ? total : undefined;
}

/**
 * The task copies `segments`, in order, into its windows of the pages file; amber copies what it
 * may not read. False when the task has no room for the first window (nothing copied).
 */
function copyWindows(
  remote: RemoteSyscall, taskFd: number, fd: number, path: string, segments: DumpSegment[], front: BigInt64Array,
  progress?: (bytes: number) => void,
): boolean {
  const total = segments.reduce((n, s) => n + s.len, 0);
  const triples = Buffer.alloc(TRIPLES_PER_RUN * 24);
  let seg = 0;
  let segOff = 0;
  for (let winOff = 0; winOff < total; winOff += WINDOW) {
    const winLen = Math.min(WINDOW, total - winOff);
    remote.resetData();
    const mapped = remote.sysRaw.mmap(0, winLen, PROT.READ | PROT.WRITE, MAP.SHARED, taskFd, winOff);
    if (mapped < 0 && mapped > -4096) {
      // No room in the task's address space (RLIMIT_AS, say): before any copy, let writev do it.
      if (winOff === 0) return false;
      throw new KernelError('mmap (pages window, in the task)', -mapped, remote.pid, path);
    }
    const win = BigInt(mapped);
    try {
      for (let at = 0; at < winLen; ) {
        let n = 0;
        const hidden: (Segment & { fileOff: number })[] = [];
        while (at < winLen && n < TRIPLES_PER_RUN) {
          const s = segments[seg];
          const len = Math.min(s.len - segOff, winLen - at);
          const src = s.addr + BigInt(segOff);
          if (s.readable) {
            triples.writeBigUInt64LE(win + BigInt(at), n * 24);
            triples.writeBigUInt64LE(src, n * 24 + 8);
            triples.writeBigUInt64LE(BigInt(len), n * 24 + 16);
            n++;
          } else {
            hidden.push({ addr: src, len, fileOff: winOff + at });
          }
          at += len;
          segOff += len;
          if (segOff === s.len) {
            seg++;
            segOff = 0;
          }
        }
        remote.resetData();
        const fault = n ? remote.copyInTask(remote.stage(triples.subarray(0, n * 24)), n) : undefined;
        if (fault) throw new CopyFaultError(remote.pid, fault.signal, fault.address, path);
        for (const h of hidden) copyThroughAmber(remote, fd, [h], h.fileOff);
      }
    } finally {
      remote.sysRaw.munmap(win, winLen);
    }
    Atomics.store(front, 0, BigInt(winOff + winLen));
    progress?.(winLen);
  }
  return true;
}

/** Below this, starting a worker thread costs more than it saves. */
const HELPER_MIN = 256 << 20;

/** populate-worker.ts on another thread; resolves when it is done (a failure there only costs speed). */
function startPopulating(path: string, total: number, front: BigInt64Array): Promise<void> {
  const job: PopulateJob = { path, total, front: front.buffer as SharedArrayBuffer };
  // required here, not at the top: node:worker_threads costs every amber start ~2.5 ms, and only a
  // restore of a large mapping gets this far
  const { Worker } = require('node:worker_threads') as typeof import('node:worker_threads');
  const worker = new Worker(join(__dirname, 'populate-worker.js'), { workerData: job });
  return new Promise((resolve) => {
    worker.once('error', () => resolve());
    worker.once('exit', () => resolve());
  });
}

/** The task's copy into the pages file faulted: the file's filesystem is full, or memory went away. */
export class CopyFaultError extends AmberError {
  constructor(readonly pid: number, readonly signal: number, readonly address: bigint, readonly path: string) {
    const why = signal === SIG.BUS ? `SIGBUS (no room left for ${path}?)` : 'SIGSEGV (memory the task could not read)';
    super(`pid ${pid}: copying its pages into ${path} stopped at 0x${address.toString(16)}: ${why}; the task was not harmed`);
  }
}
