import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { IOV_MAX, O, type RemoteSyscall, type TableCall } from '@amber/core';

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
  op: 'writev' | 'pwritev' | 'preadv',
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
        : op === 'pwritev'
          ? remote.sys.with('pages').pwritev(fd, iovAddr, count, fileOffset + total, 0)
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

/**
 * `segments` written in file order: the runs the task may read by its own writev, the others by
 * amber through /proc/PID/mem (its own fd on `path`). `at`: the file offset of the first byte
 * (pwritev, and amber writes at offsets), or 'append' (writev at the task fd's position, amber
 * appends).
 */
export function writeInFileOrder(
  remote: RemoteSyscall, taskFd: number, path: string, segments: DumpSegment[], at: number | 'append', progress?: (bytes: number) => void,
): void {
  let amberFd: number | undefined;
  let off = at;
  try {
    for (let i = 0; i < segments.length; ) {
      let j = i + 1;
      while (j < segments.length && segments[j].readable === segments[i].readable) j++;
      const run = segments.slice(i, j);
      let n: number;
      if (run[0].readable) n = transfer(remote, off === 'append' ? 'writev' : 'pwritev', taskFd, run, off === 'append' ? 0 : off, progress);
      else {
        amberFd ??= openSync(path, constants.O_WRONLY | constants.O_NOFOLLOW | (off === 'append' ? constants.O_APPEND : 0));
        n = copyThroughAmber(remote, amberFd, run, off === 'append' ? null : off, progress);
      }
      if (off !== 'append') off += n;
      i = j;
    }
  } finally {
    if (amberFd !== undefined) closeSync(amberFd);
  }
}
