import { O, PROT, MAP, SYS, UFFD, type RemoteSyscall, type VmaEntry } from '@amber/core';
import type { PagePiece } from './parent';
import { VMA } from './vmas';

const MODE_MISSING = 1;
const IOC_COPY = 0xc028aa03;

/**
 * Fills anonymous memory with UFFDIO_COPY instead of preadv: the kernel allocates each page and
 * copies the image's page-cache page into it, where a fault plus preadv first zeroes the fresh
 * page and then copies over it. Runs inside the task: a userfaultfd registered (MISSING) on the
 * private anonymous VMAs, the pages file mapped read-only as the source. Returns the pieces it
 * could not take (file-backed VMAs, which userfaultfd cannot register), for preadv.
 */
export function fillByUffdCopy(remote: RemoteSyscall, vmas: VmaEntry[], pieces: PagePiece[], progress: (n: number) => void): PagePiece[] {
  const anon = vmas.filter((v) => v.status & VMA.ANON_PRIVATE && !v.amberObject);
  const inAnon = (p: PagePiece) => anon.some((v) => p.addr >= v.start && p.addr + BigInt(p.len) <= v.end);
  const mine = pieces.filter(inAnon);
  if (!mine.length) return pieces;
  remote.resetData();
  const uffd = remote.callRaw(SYS.userfaultfd, [O.CLOEXEC | O.NONBLOCK]);
  if (uffd < 0) return pieces;
  const targets = anon.filter((v) => mine.some((p) => p.addr >= v.start && p.addr < v.end));
  const maps: { base: bigint; len: number }[] = [];
  try {
    const api = Buffer.alloc(24);
    api.writeBigUInt64LE(BigInt(UFFD.API), 0);
    remote.call('ioctl(UFFDIO_API)', SYS.ioctl, [uffd, UFFD.IOC_API, remote.stage(api)]);
    for (const v of targets) {
      const reg = Buffer.alloc(32);
      reg.writeBigUInt64LE(v.start, 0);
      reg.writeBigUInt64LE(v.end - v.start, 8);
      reg.writeBigUInt64LE(BigInt(MODE_MISSING), 16);
      remote.resetData();
      remote.call('ioctl(UFFDIO_REGISTER)', SYS.ioctl, [uffd, UFFD.IOC_REGISTER, remote.stage(reg)], `0x${v.start.toString(16)}`);
    }
    const sources = new Map<string, bigint>();
    for (const p of mine) {
      let src = sources.get(p.path);
      if (src === undefined) {
        remote.resetData();
        const fd = remote.call('open (pages)', SYS.open, [remote.stageString(p.path), O.RDONLY | O.CLOEXEC, 0], p.path);
        const size = Math.max(...mine.filter((q) => q.path === p.path).map((q) => q.offset + q.len));
        src = BigInt(remote.call('mmap (pages)', SYS.mmap, [0, size, PROT.READ, MAP.PRIVATE, fd, 0], p.path));
        remote.callRaw(SYS.close, [fd]);
        maps.push({ base: src, len: size });
        sources.set(p.path, src);
      }
      const copy = Buffer.alloc(40);
      for (let done = 0; done < p.len; ) {
        copy.writeBigUInt64LE(p.addr + BigInt(done), 0);
        copy.writeBigUInt64LE(src + BigInt(p.offset + done), 8);
        copy.writeBigUInt64LE(BigInt(p.len - done), 16);
        copy.writeBigUInt64LE(0n, 24);
        copy.writeBigInt64LE(0n, 32);
        remote.resetData();
        const at = remote.stage(copy);
        const r = remote.callRaw(SYS.ioctl, [uffd, IOC_COPY, at]);
        const copied = Number(remote.memory.read(at + 32n, 8).readBigInt64LE(0));
        if (r < 0 && copied <= 0) throw new Error(`UFFDIO_COPY at 0x${p.addr.toString(16)} in pid ${remote.pid} failed (${r})`);
        done += copied;
        progress(copied);
      }
    }
    for (const v of targets) {
      const range = Buffer.alloc(16);
      range.writeBigUInt64LE(v.start, 0);
      range.writeBigUInt64LE(v.end - v.start, 8);
      remote.resetData();
      remote.call('ioctl(UFFDIO_UNREGISTER)', SYS.ioctl, [uffd, UFFD.IOC_UNREGISTER, remote.stage(range)]);
    }
  } finally {
    for (const m of maps) remote.callRaw(SYS.munmap, [m.base, m.len]);
    remote.callRaw(SYS.close, [uffd]);
  }
  return pieces.filter((p) => !inAnon(p));
}
