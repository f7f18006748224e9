import { closeSync, openSync, readSync } from 'node:fs';
import {
  addressOf, KernelError, PAGE_IS, PAGE_SIZE, PAGEMAP_HIGH, pagemapScanInto, PagemapFlag, PM_SCAN_ARG_SIZE, processVmRead, syscall, syscallRaw,
  SYS, PROT, MAP, readU32, readU64, writeU64, type PagemapEntry,
} from '@amber/core';
import type { VmaEntry } from './vmas';

export type { PagemapEntry };

const ENTRIES_PER_READ = 64 * 1024;
const { PRESENT, SWAPPED, FILE_OR_SHARED, PFN_BITS } = PAGEMAP_HIGH;
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
  zeroPfn = (readU32(e, 4) & 0x7fffff) * 0x100000000 + readU32(e, 0);
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
      const hi = readU32(buf, i * 8 + 4);
      let wanted = (hi & (PRESENT | SWAPPED)) !== 0 && (hi & FILE_OR_SHARED) === 0;
      if (wanted && hi & PRESENT && (hi & PFN_BITS) * 0x100000000 + readU32(buf, i * 8) === zero) wanted = false;
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
  let pages = 0;
  let last: PagemapEntry | undefined;
  const ok = pagemapScan(pagemapFd, vma, PAGE_IS.PRESENT | PAGE_IS.SWAPPED, (s, e) => {
    const nr = Number((e - s) / PAGE);
    pages += nr;
    if (last && last.vaddr + BigInt(last.nrPages) * PAGE === s) last.nrPages += nr;
    else out.push((last = { vaddr: s, nrPages: nr, flags: PagemapFlag.PRESENT }));
  });
  return ok ? pages : undefined;
}

/**
 * Walks vma with PAGEMAP_SCAN for present or swapped pages that are neither file pages nor the
 * zero page, calling onRegion(start, end, categories) for each region (split wherever a category
 * of returnMask changes). False when the kernel lacks the ioctl.
 */
function pagemapScan(pagemapFd: number, vma: VmaEntry, returnMask: number, onRegion: (s: bigint, e: bigint, cat: number) => void): boolean {
  if (scanWorks === false) return false;
  const skip = PAGE_IS.FILE | PAGE_IS.PFNZERO;
  let seen = vma.start;
  for (let start = vma.start; start < vma.end; ) {
    // inverted: "not file, not the zero page"
    const n = pagemapScanInto(pagemapFd, scanArg, { start, end: vma.end, vec: scanVec, inverted: skip, required: skip, anyOf: PAGE_IS.PRESENT | PAGE_IS.SWAPPED, returned: returnMask });
    if (n < 0) {
      if (scanWorks === undefined && (n === -25 /* ENOTTY */ || n === -22 /* EINVAL */)) {
        scanWorks = false;
        return false;
      }
      throw new KernelError('ioctl(PAGEMAP_SCAN)', -n, undefined, `0x${start.toString(16)}`);
    }
    scanWorks = true;
    for (let i = 0; i < n; i++) {
      let s = readU64(scanVec, i * 24);
      const e = readU64(scanVec, i * 24 + 8);
      if (s < seen) s = seen;
      if (e <= s) continue;
      seen = e;
      onRegion(s, e, Number(readU64(scanVec, i * 24 + 16)));
    }
    start = nextScanStart(start, vma.end, n);
  }
  return true;
}

/**
 * Where the next PAGEMAP_SCAN call starts. A call that returned fewer regions than the vector
 * holds walked the whole range. Only a full vector means it stopped early, at walk_end. (Measured
 * on 6.18: once a call has produced more than the kernel's internal 512-region buffer, walk_end
 * keeps the address of that internal flush, not the range's end, so trusting it re-walks a tail
 * whose regions were already returned; callers also drop regions before what they have seen.)
 */
function nextScanStart(start: bigint, end: bigint, n: number): bigint {
  if (n < REGIONS_PER_SCAN) return end;
  const walkEnd = readU64(scanArg, 32);
  if (walkEnd <= start) throw new Error(`PAGEMAP_SCAN made no progress at 0x${start.toString(16)}`);
  return walkEnd;
}

/** A run of dumpable pages and whether the dirty tracking says they changed since it was armed. */
export interface DirtyRun {
  vaddr: bigint;
  nrPages: number;
  dirty: boolean;
}

/**
 * The dumpable pages of `vma` (as dumpableRuns) split by a dirty category: PAGE_IS_WRITTEN
 * (uffd-wp async tracking) or PAGE_IS_SOFT_DIRTY. Without PAGEMAP_SCAN, soft-dirty is read from
 * pagemap bit 55 and WRITTEN cannot be read, so every page counts as dirty.
 */
export function dirtyRuns(pagemapFd: number, vma: VmaEntry, dirtyCategory: number): DirtyRun[] {
  const out: DirtyRun[] = [];
  const add = (vaddr: bigint, nr: number, dirty: boolean) => {
    const last = out[out.length - 1];
    if (last && last.dirty === dirty && last.vaddr + BigInt(last.nrPages) * PAGE === vaddr) last.nrPages += nr;
    else out.push({ vaddr, nrPages: nr, dirty });
  };
  if (scanWorks !== false && scanDirty(pagemapFd, vma, dirtyCategory, add)) return out;
  const plain: PagemapEntry[] = [];
  dumpableRuns(pagemapFd, vma, plain);
  if (dirtyCategory !== PAGE_IS.SOFT_DIRTY) {
    for (const r of plain) add(r.vaddr, r.nrPages, true);
    return out;
  }
  const buf = Buffer.alloc(ENTRIES_PER_READ * 8);
  for (const r of plain) {
    const first = Number(r.vaddr / PAGE);
    for (let done = 0; done < r.nrPages; ) {
      const n = Math.min(r.nrPages - done, ENTRIES_PER_READ);
      readSync(pagemapFd, buf, 0, n * 8, (first + done) * 8);
      for (let i = 0; i < n; i++) add(BigInt(first + done + i) * PAGE, 1, (readU32(buf, i * 8 + 4) & 0x00800000) !== 0);
      done += n;
    }
  }
  return out;
}

function scanDirty(pagemapFd: number, vma: VmaEntry, dirtyCategory: number, add: (vaddr: bigint, nr: number, dirty: boolean) => void): boolean {
  return pagemapScan(pagemapFd, vma, PAGE_IS.PRESENT | PAGE_IS.SWAPPED | dirtyCategory, (s, e, cat) => {
    // Not present (swapped, or a uffd-wp marker left where a protected page was zapped, e.g.
    // by MADV_DONTNEED): never trusted as unchanged; reading it gives its true contents.
    add(s, Number((e - s) / PAGE), (cat & dirtyCategory) !== 0 || (cat & PAGE_IS.PRESENT) === 0);
  });
}
