import { closeSync, openSync, readSync } from 'node:fs';
import {
  addressOf, KernelError, PAGE_IS, PAGE_SIZE, PAGEMAP_SCAN, PagemapFlag, PM_SCAN_ARG_SIZE, processVmRead, syscall, syscallRaw,
  SYS, PROT, MAP, type PagemapEntry,
} from '@amber/core';
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

const REGIONS_PER_SCAN = 4096;
const scanArg = Buffer.alloc(PM_SCAN_ARG_SIZE);
const scanVec = Buffer.alloc(REGIONS_PER_SCAN * 24);
let scanWorks: boolean | undefined;

/**
 * Same as dumpableRuns, but the kernel walks the page tables and hands back ranges (PAGEMAP_SCAN,
 * Linux 6.7): a 64 GiB sparse mapping costs one ioctl instead of 128 MiB of pagemap entries.
 * Returns undefined when the kernel lacks the ioctl.
 */
export function scannedRuns(pagemapFd: number, vma: VmaEntry, out: PagemapEntry[]): number | undefined {
  if (scanWorks === false) return undefined;
  const skip = PAGE_IS.FILE | PAGE_IS.PFNZERO;
  let pages = 0;
  let last: PagemapEntry | undefined;
  for (let start = vma.start; start < vma.end; ) {
    scanArg.fill(0);
    scanArg.writeBigUInt64LE(BigInt(PM_SCAN_ARG_SIZE), 0);
    scanArg.writeBigUInt64LE(start, 16);
    scanArg.writeBigUInt64LE(vma.end, 24);
    scanArg.writeBigUInt64LE(addressOf(scanVec), 40);
    scanArg.writeBigUInt64LE(BigInt(REGIONS_PER_SCAN), 48);
    scanArg.writeBigUInt64LE(BigInt(skip), 64); // inverted: "not file, not the zero page"
    scanArg.writeBigUInt64LE(BigInt(skip), 72);
    scanArg.writeBigUInt64LE(BigInt(PAGE_IS.PRESENT | PAGE_IS.SWAPPED), 80);
    scanArg.writeBigUInt64LE(BigInt(PAGE_IS.PRESENT | PAGE_IS.SWAPPED), 88);
    const n = syscallRaw(SYS.ioctl, [pagemapFd, PAGEMAP_SCAN, addressOf(scanArg)]);
    if (n < 0) {
      if (scanWorks === undefined && (n === -25 /* ENOTTY */ || n === -22 /* EINVAL */)) {
        scanWorks = false;
        return undefined;
      }
      throw new KernelError('ioctl(PAGEMAP_SCAN)', -n, undefined, `0x${start.toString(16)}`);
    }
    scanWorks = true;
    for (let i = 0; i < n; i++) {
      const s = scanVec.readBigUInt64LE(i * 24);
      const e = scanVec.readBigUInt64LE(i * 24 + 8);
      const nr = Number((e - s) / PAGE);
      pages += nr;
      if (last && last.vaddr + BigInt(last.nrPages) * PAGE === s) last.nrPages += nr;
      else out.push((last = { vaddr: s, nrPages: nr, flags: PagemapFlag.PRESENT }));
    }
    const walkEnd = scanArg.readBigUInt64LE(32);
    if (walkEnd <= start) throw new Error(`PAGEMAP_SCAN made no progress at 0x${start.toString(16)}`);
    start = walkEnd;
  }
  return pages;
}
