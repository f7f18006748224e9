import { closeSync, constants, openSync } from 'node:fs';
import { AmberError, F, faultPoint, KernelError, skippedForTest, O, SPLICE_F_MOVE, SPLICE_F_NONBLOCK, type RemoteSyscall, type TableCall } from '@amber/core';

import { copyThroughAmber, segmentsAfter, type DumpSegment, type Segment } from './transfer';

const EAGAIN = 11;
const EINTR = 4;
const EINVAL = 22;
/** The largest pipe an unprivileged task may ask for (fs.pipe-max-size, default 1 MiB). */
const PIPE_SIZE = 1 << 20;
/** Pairs per stop of the task: 128 MiB with 1 MiB pipes, one ptrace round trip. */
const PAIRS_PER_STOP = 128;
const IOVEC = 16;
const PAGE = 4096;
const CALL_ENTRY = 64;

/** A piece of the pages file the pipe carries in one go: iovecs of the task, and where they go. */
interface Chunk {
  fileOff: number;
  segments: Segment[];
  len: number;
}

/**
 * Dumps pages through a pipe of the task's own, the way the kernel moves pages best: the task
 * vmsplice()s up to a pipe's worth of its memory into the pipe (references to its pages, no copy;
 * without SPLICE_F_GIFT, so the pages stay the task's) and splice()s the pipe into the pages file
 * at their offset (one copy, into the page cache). Many such pairs run per stop through the call
 * loop. Memory the task may not read is copied by amber through /proc/PID/mem. `taskFd` is the
 * pages file opened for writing in the task (not O_APPEND: splice writes at an offset).
 * False when the task cannot make a pipe, or the file's filesystem does not take splice: nothing
 * was written, and another path should.
 */
export function spliceIntoImage(
  remote: RemoteSyscall, taskFd: number, path: string, segments: DumpSegment[], progress?: (bytes: number) => void, log?: (line: string) => void,
): boolean {
  let pipe = openPipe(remote);
  if (!pipe) return false;
  log?.(`pid ${remote.pid}: pages move through a pipe of ${pipe.size} bytes`);
  const { chunks, hidden } = chunked(segments, pipe.size);
  let started = false;
  try {
    let stalled = false;
    // test hook: the first stop's last splice asks for half its chunk, as a short move would leave it
    // (the rest stays in the pipe, for the next stop to find)
    let shorten = skippedForTest('dump:splice-short');
    for (let k = 0; k < chunks.length; ) {
      const batch = nextBatch(remote, chunks, k);
      const { done, moved, failure } = runBatch(remote, pipe, taskFd, batch, shorten);
      shorten = false;
      progress?.(batch.slice(0, done).reduce((n, c) => n + c.len, 0) + moved);
      if (done === batch.length) {
        k += done;
        stalled = false;
        started = true;
        faultPoint('dump:splice');
        continue;
      }
      const chunk = chunks[k + done];
      if (!started && done === 0 && moved === 0 && failure?.errno === EINVAL && failure.syscall.startsWith('splice')) return false;
      if (failure && failure.errno !== EAGAIN && failure.errno !== EINTR) {
        throw new SpliceError(remote.pid, addressAt(chunk, moved), failure.syscall.replace(/ \(in the task\)$/, ''), failure.errnoName, path);
      }
      // A short move (or a pipe found full after one): the pipe may hold pages that belong
      // elsewhere. A new pipe, and on from the first byte not in place; later pairs' writes
      // are overwritten by the same bytes at their right offsets.
      if (done === 0 && moved === 0 && stalled) throw new SpliceError(remote.pid, addressAt(chunk, 0), 'splice', 'no progress', path);
      stalled = done === 0 && moved === 0;
      started = true;
      log?.(`pid ${remote.pid}: a short move at 0x${addressAt(chunk, moved).toString(16)}${failure ? ` (${failure.errnoName})` : ''}; on through a new pipe`);
      closePipe(remote, pipe);
      pipe = undefined;
      pipe = openPipe(remote);
      if (!pipe) throw new SpliceError(remote.pid, addressAt(chunk, moved), 'pipe2', 'no pipe', path);
      chunks[k + done] = rest(chunk, moved);
      k += done;
    }
  } finally {
    if (pipe) closePipe(remote, pipe);
  }
  if (hidden.length) {
    const fd = openSync(path, constants.O_WRONLY | constants.O_NOFOLLOW);
    try {
      for (const h of hidden) copyThroughAmber(remote, fd, [h], h.fileOff, progress);
    } finally {
      closeSync(fd);
    }
  }
  return true;
}

interface Pipe {
  r: number;
  w: number;
  size: number;
}

/** A pipe in the task, as large as it may have it; undefined when it can have none (EMFILE). */
function openPipe(remote: RemoteSyscall): Pipe | undefined {
  remote.resetData();
  const fds = remote.reserve(8);
  if (remote.sysRaw.pipe2(fds, O.CLOEXEC) < 0) return undefined;
  const b = remote.memory.read(fds, 8);
  const pipe = { r: b.readInt32LE(0), w: b.readInt32LE(4), size: 0 };
  try {
    const grown = remote.sysRaw.fcntl(pipe.w, F.SETPIPE_SZ, PIPE_SIZE);
    pipe.size = grown > 0 ? Math.min(grown, PIPE_SIZE) : remote.sys.with('pages pipe').fcntl(pipe.w, F.GETPIPE_SZ, 0);
  } catch (e) {
    // an interruption, say: the task keeps no pipe of ours
    closePipe(remote, pipe);
    throw e;
  }
  return pipe;
}

function closePipe(remote: RemoteSyscall, pipe: Pipe): void {
  remote.sysRaw.close(pipe.r);
  remote.sysRaw.close(pipe.w);
}

/** The readable segments cut into pipe-sized chunks at their file offsets; the others apart. */
function chunked(segments: DumpSegment[], size: number): { chunks: Chunk[]; hidden: (Segment & { fileOff: number })[] } {
  const chunks: Chunk[] = [];
  const hidden: (Segment & { fileOff: number })[] = [];
  let fileOff = 0;
  let open: Chunk | undefined;
  for (const s of segments) {
    if (!s.readable) {
      hidden.push({ addr: s.addr, len: s.len, fileOff });
      fileOff += s.len;
      open = undefined;
      continue;
    }
    for (let o = 0; o < s.len; ) {
      if (!open || open.len === size) {
        open = { fileOff, segments: [], len: 0 };
        chunks.push(open);
      }
      const n = Math.min(s.len - o, size - open.len);
      open.segments.push({ addr: s.addr + BigInt(o), len: n });
      open.len += n;
      fileOff += n;
      o += n;
    }
  }
  return { chunks, hidden };
}

/** The chunks from k that fit one stop: their iovecs, offsets and call table in the scratch area. */
function nextBatch(remote: RemoteSyscall, chunks: Chunk[], k: number): Chunk[] {
  remote.resetData();
  let room = remote.dataRoom - 64;
  const batch: Chunk[] = [];
  for (let i = k; i < chunks.length && batch.length < PAIRS_PER_STOP; i++) {
    const need = chunks[i].segments.length * IOVEC + 16 + 2 * CALL_ENTRY + 8;
    if (need > room && batch.length) break;
    room -= need;
    batch.push(chunks[i]);
  }
  return batch;
}

/**
 * One stop: a vmsplice and a splice per chunk, each splice to the chunk's own offset (a loff_t in
 * the scratch area, which the kernel advances by what it wrote). Says how many chunks are wholly in
 * place, how much of the next one, and the error that ended the loop if one did.
 */
function runBatch(remote: RemoteSyscall, pipe: Pipe, taskFd: number, batch: Chunk[], shorten = false): { done: number; moved: number; failure?: KernelError } {
  const offsets = Buffer.alloc(batch.length * 8);
  batch.forEach((c, i) => offsets.writeBigInt64LE(BigInt(c.fileOff), i * 8));
  const offsetsAt = remote.stage(offsets);
  const calls: TableCall[] = [];
  batch.forEach((c, i) => {
    const iov = Buffer.alloc(c.segments.length * IOVEC);
    c.segments.forEach((s, j) => {
      iov.writeBigUInt64LE(s.addr, j * IOVEC);
      iov.writeBigUInt64LE(BigInt(s.len), j * IOVEC + 8);
    });
    const detail = `pages at 0x${c.segments[0].addr.toString(16)}`;
    // NONBLOCK: a pipe found full or empty ends the loop with EAGAIN instead of hanging the task
    calls.push({ name: 'vmsplice', args: [pipe.w, iov, c.segments.length, SPLICE_F_NONBLOCK], detail });
    const len = shorten && i === batch.length - 1 ? Math.max(PAGE, Math.floor(c.len / 2 / PAGE) * PAGE) : c.len;
    calls.push({ name: 'splice', args: [pipe.r, 0n, taskFd, offsetsAt + BigInt(i * 8), len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK], detail });
  });
  // queryMany: on a parked thread (a dump) the whole table goes in one stop instead of two stops
  // a call, which cost a 1 GiB dump ~0.4 s; every call runs even after one fails, and what a
  // later pair writes after a short move is written again, as below
  const results = remote.queryMany(calls);
  const first = results.findIndex((r) => r < 0 && r > -4096);
  const failure = first < 0 ? undefined : new KernelError(`${calls[first].name} (in the task)`, -results[first], remote.pid, calls[first].detail);
  const after = remote.memory.read(offsetsAt, offsets.length);
  let done = 0;
  while (done < batch.length && Number(after.readBigInt64LE(done * 8)) === batch[done].fileOff + batch[done].len) done++;
  const moved = done < batch.length ? Number(after.readBigInt64LE(done * 8)) - batch[done].fileOff : 0;
  return { done, moved, failure };
}

/** What is left of a chunk after its first n bytes. */
function rest(c: Chunk, n: number): Chunk {
  return { fileOff: c.fileOff + n, segments: segmentsAfter(c.segments, n), len: c.len - n };
}

/** The task's address of the chunk's byte n. */
function addressAt(c: Chunk, n: number): bigint {
  for (const s of c.segments) {
    if (n < s.len) return s.addr + BigInt(n);
    n -= s.len;
  }
  return c.segments[c.segments.length - 1].addr + BigInt(c.segments[c.segments.length - 1].len);
}

/** The task's vmsplice/splice of its pages into the pages file failed. */
export class SpliceError extends AmberError {
  constructor(readonly pid: number, readonly address: bigint, readonly syscall: string, readonly errnoName: string, readonly path: string) {
    super(`pid ${pid}: moving its pages into ${path} stopped at 0x${address.toString(16)}: ${syscall} failed: ${errnoName}; the task was not harmed`);
  }
}
