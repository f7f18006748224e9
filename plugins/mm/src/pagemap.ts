import { closeSync, openSync, readSync } from 'node:fs';
import { PAGE_SIZE, PagemapFlag, processVmRead, syscall, SYS, PROT, MAP, type PagemapEntry } from '@amber/core';
import type { VmaEntry } from './vmas';

export type { PagemapEntry };

const ENTRIES_PER_READ = 64 * 1024;
const PAGE = BigInt(PAGE_SIZE);

let zeroPfn: number | undefined;

/**
 * The page frame of the kernel's shared zero page: a private anonymous page that was only read
 * maps it. Pages at that frame are all zeros and are never written to an image.
 */
export function zeroPagePfn(): number {
  if (zeroPfn !== undefined) return zeroPfn;
  const addr = BigInt(syscall('mmap', SYS.mmap, [0, PAGE_SIZE, PROT.READ, MAP.PRIVATE | MAP.ANONYMOUS, -1, 0]));
  processVmRead(process.pid, addr, Buffer.alloc(1));
  const fd = openSync('/proc/self/pagemap', 'r');
  const e = Buffer.alloc(8);
  readSync(fd, e, 0, 8, Number(addr / PAGE) * 8);
  closeSync(fd);
  syscall('munmap', SYS.munmap, [addr, PAGE_SIZE]);
  zeroPfn = (e.readUInt32LE(4) & 0x7fffff) * 0x100000000 + e.readUInt32LE(0);
  return zeroPfn;
}

/**
 * Runs of pages of `vma` whose contents must go into the image: present or swapped, private to
 * the task (not the file's own page cache page), and not the zero page.
 */
export function dumpableRuns(pagemapFd: number, vma: VmaEntry, out: PagemapEntry[]): number {
  const zero = zeroPagePfn();
  const first = Number(vma.start / PAGE);
  const count = Number((vma.end - vma.start) / PAGE);
  const buf = Buffer.alloc(Math.min(count, ENTRIES_PER_READ) * 8);
  let runStart = -1;
  let pages = 0;
  const close = (endPage: number) => {
    if (runStart < 0) return;
    out.push({ vaddr: BigInt(runStart) * PAGE, nrPages: endPage - runStart, flags: PagemapFlag.PRESENT });
    pages += endPage - runStart;
    runStart = -1;
  };
  for (let done = 0; done < count; ) {
    const n = Math.min(count - done, ENTRIES_PER_READ);
    readSync(pagemapFd, buf, 0, n * 8, (first + done) * 8);
    for (let i = 0; i < n; i++) {
      const hi = buf.readUInt32LE(i * 8 + 4);
      // bit 63 present, 62 swapped, 61 file page or shared anonymous
      let wanted = (hi & 0xc0000000) !== 0 && (hi & 0x20000000) === 0;
      if (wanted && (hi & 0x80000000) && (hi & 0x7fffff) * 0x100000000 + buf.readUInt32LE(i * 8) === zero) wanted = false;
      const page = first + done + i;
      if (wanted) {
        if (runStart < 0) runStart = page;
      } else close(page);
    }
    done += n;
  }
  close(first + count);
  return pages;
}
