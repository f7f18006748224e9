import { openSync } from 'node:fs';
import {
  F, FIONREAD, KernelError, O, SPLICE_F_NONBLOCK, SYS, addressOf, close, fcntl, pipe2, syscall, takeFd, readFd, tee, writeAll,
  type DumpContext, type FdResource, type RestoreContext, type RestoreTask,
} from '@amber/core';
import { growingImage, type PipeDataEntry } from './images';

/** Bytes queued in the pipe behind fd (FIONREAD works on either end). */
function queuedBytes(fd: number, what: string): number {
  const n = Buffer.alloc(4);
  syscall('ioctl(FIONREAD)', SYS.ioctl, [fd, FIONREAD, addressOf(n)], { detail: what });
  return n.readInt32LE(0);
}

/**
 * The unread contents of a pipe, left in place: tee(2) duplicates the pipe's buffers into a
 * pipe of amber's as large as the task's, from which amber reads. It works on amber's copy of the
 * task's description when that reads (no open event); a write-only one needs a new reading open
 * of the FIFO, which fanotify / inotify report, so it is made only when data is queued. tee itself
 * raises FAN_ACCESS / IN_ACCESS on the pipe when it copies anything: a watched FIFO with data sees
 * the dump.
 */
export function peekPipe(fd: FdResource): { data: Buffer; size: number } {
  const what = `fd ${fd.fd} of pid ${fd.pid}`;
  let src = takeFd(fd.pid, fd.fd);
  try {
    const size = fcntl(src, F.GETPIPE_SZ, 0, 'fcntl(F_GETPIPE_SZ)');
    if ((fd.info.flags & O.ACCMODE) === O.WRONLY) {
      if (queuedBytes(src, what) === 0) return { data: Buffer.alloc(0), size };
      close(src);
      src = -1;
      src = openSync(`/proc/${fd.pid}/fd/${fd.fd}`, O.RDONLY | O.NONBLOCK);
    }
    const [r, w] = pipe2(O.NONBLOCK | O.CLOEXEC);
    try {
      fcntl(w, F.SETPIPE_SZ, size, 'fcntl(F_SETPIPE_SZ)');
      let n = 0;
      try {
        n = tee(src, w, size, SPLICE_F_NONBLOCK);
      } catch (e) {
        if (!(e instanceof KernelError && e.errnoName === 'EAGAIN')) throw e;
      }
      const data = Buffer.alloc(n);
      for (let got = 0; got < n;) got += readFd(r, data, got);
      return { data, size };
    } finally {
      close(r);
      close(w);
    }
  } finally {
    if (src >= 0) close(src);
  }
}

/** Saves a pipe's contents once per pipe (both ends and every holder share them). */
export function dumpPipeData(ctx: DumpContext, fd: FdResource, pipeId: number, image: 'pipes-data' | 'fifo-data'): void {
  const done = ctx.state(`fs:${image}:done`, () => new Set<number>());
  if (done.has(pipeId)) return;
  done.add(pipeId);
  const { data, size } = peekPipe(fd);
  growingImage<PipeDataEntry>(ctx, image, image).add({ pipeId, bytes: data.length, size }, data);
  ctx.count(`${image} bytes`, data.length);
}

function dataOf(ctx: RestoreContext, image: 'pipes-data' | 'fifo-data'): Map<number, { entry: PipeDataEntry; data: Buffer }> {
  return ctx.state(`fs:${image}:read`, () => {
    const out = new Map<number, { entry: PipeDataEntry; data: Buffer }>();
    if (!ctx.store.has(image)) return out;
    const img = ctx.store.read<PipeDataEntry>(image, image);
    img.entries.forEach((entry, i) => out.set(entry.pipeId, { entry, data: img.blobs[i] ?? Buffer.alloc(0) }));
    return out;
  });
}

/** Sizes the new pipe as it was and writes the dumped contents back through writeFd. */
export function restorePipeData(ctx: RestoreContext, task: RestoreTask, writeFd: number, pipeId: number, image: 'pipes-data' | 'fifo-data'): void {
  const saved = dataOf(ctx, image).get(pipeId);
  if (!saved) return;
  const remote = task.remote;
  if (saved.entry.size) remote.sys.with(`pipe ${pipeId}`).fcntl(writeFd, F.SETPIPE_SZ, saved.entry.size);
  writeAll(remote, writeFd, saved.data, `pipe ${pipeId}`);
}
