import { closeSync, openSync, readSync } from 'node:fs';
import { MADV, PAGE_IS, PAGE_SIZE, PAGEMAP_HIGH, PM_SCAN_ARG_SIZE, SYS } from '../kernel/constants';
import { syscallRaw } from '../kernel/libc';
import { pagemapScanInto } from '../kernel/pagemap-scan';
import { parseMaps, procRead } from './proc';

const { PRESENT, SWAPPED, FILE_OR_SHARED } = PAGEMAP_HIGH;

/**
 * Takes the clean pages of node's own binary (its code and read-only data) out of this process's
 * page tables; returns the bytes of the mappings dropped. The pages stay in the page cache, shared
 * with every other node; those still used fault back in, 16 at a time (the kernel's fault-around).
 *
 * Why: node's start-up leaves ~35 MB of its 90 MB binary resident (the JS parser, the snapshot
 * and code-cache deserializers, ICU's tables ...), and as mapped pages of amber's they count in its
 * resident set, and its peak, until it exits, although a dump or restore runs little of it again.
 * Measured on the 50 x 4 tree: node's file pages 35 -> 18 MB at exit.
 *
 * Only mappings with no private page are dropped: a read-only mapping can hold copy-on-write
 * pages (RELRO data the dynamic linker relocated, then made read-only), and MADV_DONTNEED on
 * those would throw the relocations away, not refault them from the file. Best effort: where
 * pagemap cannot be read, nothing is dropped, and the command runs on as before.
 */
export function releaseCleanCodePages(file: string = process.execPath): number {
  const readOnly = parseMaps(procRead('self', 'maps')).filter((m) => m.path === file && (m.perms === 'r-xp' || m.perms === 'r--p'));
  if (!readOnly.length) return 0;
  let dropped = 0;
  let pagemap: number;
  try {
    pagemap = openSync('/proc/self/pagemap', 'r');
  } catch {
    // a /proc without pagemap: nothing is known to be clean, so nothing is dropped
    return 0;
  }
  try {
    for (let i = 0; i < readOnly.length; i++) {
      const start = Number(readOnly[i].start);
      const len = Number(readOnly[i].end) - start;
      if (holdsPrivatePages(pagemap, start, len)) continue;
      if (syscallRaw(SYS.madvise, [start, len, MADV.DONTNEED]) === 0) dropped += len;
    }
  } finally {
    closeSync(pagemap);
  }
  return dropped;
}

/**
 * Whether [start, start + len) of this process holds a page of its own: copy-on-write, present or
 * swapped out. One PAGEMAP_SCAN (Linux 6.7) asks the kernel for the first such page; without it,
 * every page's pagemap entry is read and looked at (~20k of them for node's binary).
 */
export function holdsPrivatePages(pagemap: number, start: number, len: number): boolean {
  const vec = Buffer.alloc(24);
  const n = pagemapScanInto(pagemap, Buffer.alloc(PM_SCAN_ARG_SIZE), {
    start: BigInt(start), end: BigInt(start + len), vec,
    // present or swapped, and not a file page
    inverted: PAGE_IS.FILE, required: PAGE_IS.FILE, anyOf: PAGE_IS.PRESENT | PAGE_IS.SWAPPED, returned: PAGE_IS.PRESENT | PAGE_IS.SWAPPED,
    maxPages: 1,
  });
  if (n >= 0) return n > 0;
  return n === -25 /* ENOTTY */ || n === -22 /* EINVAL */ ? readsPrivatePages(pagemap, start, len) : true;
}

/** holdsPrivatePages by reading every page's pagemap entry. */
export function readsPrivatePages(pagemap: number, start: number, len: number): boolean {
  const pages = len / PAGE_SIZE;
  const entries = new Uint32Array(pages * 2);
  const bytes = Buffer.from(entries.buffer);
  let got = 0;
  while (got < bytes.length) {
    let n: number;
    try {
      n = readSync(pagemap, bytes, got, bytes.length - got, (start / PAGE_SIZE) * 8 + got);
    } catch {
      return true;
    }
    // unread entries: not known to be clean
    if (n <= 0) return true;
    got += n;
  }
  for (let i = 1; i < entries.length; i += 2) {
    const high = entries[i];
    if (high & SWAPPED || (high & PRESENT && !(high & FILE_OR_SHARED))) return true;
  }
  return false;
}
