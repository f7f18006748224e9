import { closeSync, openSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { addressOf, close, KernelError, MAP, O, PROT, readI64, SYS, syscall, syscallAsync, syscallRaw, takeFd, type RemoteSyscall, type TableCall, type VmaEntry, UFFD, writeU64 } from '@amber/core';
import type { PagePiece } from './parent';
import { isSpecial, VMA } from './vmas';

/** Bytes one UFFDIO_COPY takes, and the most of the pages file amber maps at a time per thread. */
const CHUNK = 2 << 20;
/**
 * Up to this much a task's copies run on amber's main thread: a hop to libuv's threads costs more
 * than the copy of a small process's pages (the 50 x 4 tree: ~1.5 ms a process instead of ~0.3).
 */
const ON_MAIN_THREAD = 1 << 20;
const EAGAIN = 11;

/**
 * Fills anonymous memory with UFFDIO_COPY instead of preadv: the kernel allocates each page and
 * copies the image's page-cache page into it, where a fault plus preadv first zeroes the fresh
 * page and then copies over it. The task registers a userfaultfd (MISSING) on its private
 * anonymous VMAs; amber takes a copy of that fd and issues the copies itself, from the pages file
 * mapped a chunk at a time into its own memory, on several of libuv's threads at once: the copy
 * runs on every core, and amber's resident size grows by at most a chunk per thread.
 * Returns the pieces it could not take (file-backed VMAs, which userfaultfd cannot register).
 */
export async function fillByUffdCopy(remote: RemoteSyscall, vmas: VmaEntry[], pieces: PagePiece[], progress: (n: number) => void, taskUffd?: number): Promise<PagePiece[]> {
  const anon = vmas.filter((v) => v.status & VMA.ANON_PRIVATE && !v.amberObject && !isSpecial(v));
  const inAnon = (p: PagePiece) => anon.some((v) => p.addr >= v.start && p.addr + BigInt(p.len) <= v.end);
  const mine = pieces.filter(inAnon);
  if (!mine.length) return pieces;
  const targets = anon.filter((v) => mine.some((p) => p.addr >= v.start && p.addr < v.end));
  const uffd = registerInTask(remote, targets, taskUffd);
  if (uffd === undefined) return pieces;
  try {
    await copyChunks(remote.pid, uffd, mine, progress);
    for (const v of targets) {
      const range = Buffer.alloc(16);
      writeU64(range, 0, v.start);
      writeU64(range, 8, v.end - v.start);
      syscall('ioctl(UFFDIO_UNREGISTER)', SYS.ioctl, [uffd, UFFD.IOC_UNREGISTER, addressOf(range)], { pid: remote.pid, detail: `0x${v.start.toString(16)}` });
    }
  } finally {
    close(uffd);
  }
  return pieces.filter((p) => !inAnon(p));
}

/** The task's own call that makes the userfaultfd fillByUffdCopy takes (in a call loop of the caller's). */
export const USERFAULTFD_CALL: TableCall = { name: 'userfaultfd', args: [O.CLOEXEC | O.NONBLOCK] };

/**
 * A userfaultfd of the task's, registered on `targets`, as an fd of amber's; undefined if the
 * kernel refuses one. The task only creates it (`taskUffd`, made by USERFAULTFD_CALL and closed by
 * the caller; else here, in a stop of its own): a userfaultfd acts on the mm of the task that
 * made it whoever issues its ioctls, so amber does the handshake and the registrations on its
 * copy, without a stop of the task for each. The registration lives as long as the userfaultfd
 * does, so amber's copy alone keeps it.
 */
function registerInTask(remote: RemoteSyscall, targets: VmaEntry[], taskUffd?: number): number | undefined {
  remote.resetData();
  const fd = taskUffd ?? remote.sysRaw.userfaultfd(O.CLOEXEC | O.NONBLOCK);
  if (fd < 0) return undefined;
  let uffd: number;
  try {
    uffd = takeFd(remote.pid, fd);
  } finally {
    if (taskUffd === undefined) remote.sysRaw.close(fd);
  }
  try {
    const api = Buffer.alloc(24);
    writeU64(api, 0, BigInt(UFFD.API));
    syscall('ioctl(UFFDIO_API)', SYS.ioctl, [uffd, UFFD.IOC_API, addressOf(api)], { pid: remote.pid });
    for (const v of targets) {
      const reg = Buffer.alloc(32);
      writeU64(reg, 0, v.start);
      writeU64(reg, 8, v.end - v.start);
      writeU64(reg, 16, BigInt(UFFD.REGISTER_MODE_MISSING));
      syscall('ioctl(UFFDIO_REGISTER)', SYS.ioctl, [uffd, UFFD.IOC_REGISTER, addressOf(reg)], { pid: remote.pid, detail: `0x${v.start.toString(16)}` });
    }
    return uffd;
  } catch (e) {
    close(uffd);
    throw e;
  }
}

interface Chunk {
  addr: bigint;
  len: number;
  fd: number;
  offset: number;
}

async function copyChunks(pid: number, uffd: number, pieces: PagePiece[], progress: (n: number) => void): Promise<void> {
  const files = new Map<string, number>();
  try {
    const chunks: Chunk[] = [];
    for (const p of pieces) {
      let fd = files.get(p.path);
      if (fd === undefined) files.set(p.path, (fd = openSync(p.path, 'r')));
      for (let at = 0; at < p.len; at += CHUNK) chunks.push({ addr: p.addr + BigInt(at), len: Math.min(CHUNK, p.len - at), fd, offset: p.offset + at });
    }
    let next = 0;
    const total = pieces.reduce((n, p) => n + p.len, 0);
    const call = total <= ON_MAIN_THREAD ? (nr: number, args: (number | bigint)[]) => Promise.resolve(syscallRaw(nr, args)) : syscallAsync;
    const worker = async (): Promise<void> => {
      const arg = Buffer.alloc(40);
      for (let c = chunks[next++]; c; c = chunks[next++]) {
        // a failure stops the other threads at their next chunk
        // populating the source mapping is a good share of the work: off the main thread too
        const mapped = await call(SYS.mmap, [0, c.len, PROT.READ, MAP.SHARED | MAP.POPULATE, c.fd, c.offset]);
        if (mapped < 0 && mapped > -4096) {
          next = chunks.length;
          throw new KernelError('mmap (pages)', -mapped, undefined, `offset ${c.offset}`);
        }
        const src = BigInt(mapped);
        try {
          for (let done = 0; done < c.len; ) {
            writeU64(arg, 0, c.addr + BigInt(done));
            writeU64(arg, 8, src + BigInt(done));
            writeU64(arg, 16, BigInt(c.len - done));
            writeU64(arg, 24, 0n);
            writeU64(arg, 32, 0n);
            await call(SYS.ioctl, [uffd, UFFD.IOC_COPY, addressOf(arg)]);
            // the result is in the argument: bytes copied, or -errno (partial copies ask to go on)
            const copied = Number(readI64(arg, 32));
            if (copied === -EAGAIN) continue;
            if (copied <= 0) next = chunks.length;
            if (copied <= 0) throw new KernelError('UFFDIO_COPY', -copied || EAGAIN, pid, `0x${(c.addr + BigInt(done)).toString(16)}`);
            done += copied;
            progress(copied);
          }
        } finally {
          syscallRaw(SYS.munmap, [src, c.len]);
        }
      }
    };
    const threads = total <= ON_MAIN_THREAD ? 1 : Math.max(1, Math.min(4, availableParallelism(), chunks.length));
    const settled = await Promise.allSettled(Array.from({ length: threads }, worker));
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
  } finally {
    for (const fd of files.values()) closeSync(fd);
  }
}
