import { closeSync, constants, openSync, statfsSync } from 'node:fs';
import {
  AmberError, IOV_MAX, O, openAsTask, PAGE_SIZE, PagemapFlag, processVmRead, residentPages, SHM, shmAttach, shmDetach, writeFromAddress,
  type DumpContext, type PagemapEntry, type RestoreContext, type RestoreTask,
} from '@amber/core';
import { shmPagemapName } from './images';

const HUGETLBFS_MAGIC = 0x958458f6;
const hex = (v: bigint | number) => `0x${v.toString(16)}`;

/**
 * Segments up to this size keep their contents in ipcns-shm itself, after their entry (CRIU's
 * first format, which crit decodes); larger ones in pagemap-shmem-<shmid> and a pages file, present
 * pages only (CRIU's in_pagemaps, which crit 3.17 misreads when a segment follows one).
 */
export const SHM_INLINE_LIMIT = 1n << 20n;

export class ShmHugetlbError extends AmberError {}

const roundUp = (n: bigint) => ((n + BigInt(PAGE_SIZE) - 1n) / BigInt(PAGE_SIZE)) * BigInt(PAGE_SIZE);

/** What a segment's dump stored: its contents inline, or the number of its pagemap-shmem image. */
export type ShmContents = { inline: Buffer } | { pagemapId: number };

/**
 * Dumps a segment's contents. amber attaches the segment read-only to read it (as CRIU does):
 * that attach shows in its shm_atime, shm_dtime and shm_lpid. Which pages are present, mincore
 * says; a segment with pages in swap, which mincore cannot tell from absent ones, is dumped whole.
 */
export function dumpShmContents(ctx: DumpContext, shmid: number, key: number, size: bigint, swapped: boolean, pagemapId: () => number): ShmContents {
  const addr = shmAttach(shmid, SHM.RDONLY);
  const len = roundUp(size);
  try {
    if (statfsSync(`/proc/self/map_files/${addr.toString(16)}-${(addr + len).toString(16)}`).type === HUGETLBFS_MAGIC) {
      throw new ShmHugetlbError(`shm id ${shmid} (key ${hex(key >>> 0)}) is SHM_HUGETLB memory, which amber cannot dump`);
    }
    if (size <= SHM_INLINE_LIMIT) {
      const inline = Buffer.alloc(Number(size));
      if (size > 0n) processVmRead(process.pid, addr, inline);
      ctx.count('shm bytes', inline.length);
      return { inline };
    }
    const id = pagemapId();
    dumpPresentPages(ctx, shmid, addr, len, swapped ? undefined : residentPages(addr, len), id);
    return { pagemapId: id };
  } finally {
    shmDetach(addr);
  }
}

function dumpPresentPages(ctx: DumpContext, shmid: number, addr: bigint, len: bigint, resident: Buffer | undefined, pagemapId: number): void {
  const runs: PagemapEntry[] = [];
  const pages = Number(len / BigInt(PAGE_SIZE));
  for (let p = 0; p < pages; ) {
    if (resident && !(resident[p] & 1)) {
      p++;
      continue;
    }
    let q = p + 1;
    while (q < pages && (!resident || resident[q] & 1)) q++;
    runs.push({ vaddr: BigInt(p * PAGE_SIZE), nrPages: q - p, flags: PagemapFlag.PRESENT });
    p = q;
  }
  const { pagesId, path } = ctx.createPages();
  const fd = openSync(path, constants.O_WRONLY | constants.O_APPEND | constants.O_NOFOLLOW);
  try {
    for (const r of runs) {
      for (let done = 0, want = r.nrPages * PAGE_SIZE; done < want; ) {
        const n = writeFromAddress(fd, addr + r.vaddr + BigInt(done), Math.min(want - done, 1 << 30));
        if (n <= 0) throw new AmberError(`shm id ${shmid}: short write of its pages into ${path}`);
        done += n;
      }
    }
  } finally {
    closeSync(fd);
  }
  ctx.store.write('pagemap', shmPagemapName(pagemapId), runs, { head: { pagesId } });
  ctx.count('shm pages', runs.reduce((s, r) => s + r.nrPages, 0));
}

/**
 * Fills a new segment, by the task: it attaches the segment, gets its contents (inline ones
 * written in by amber, all-zero pages left absent; a pages file read in by its own preadv) and
 * detaches.
 */
export function fillShmContents(ctx: RestoreContext, task: RestoreTask, shmid: number, contents: ShmContents): void {
  const r = task.remote;
  const what = `shm id ${shmid}`;
  if ('inline' in contents && !contents.inline.some((b) => b !== 0)) return;
  r.resetData();
  const addr = BigInt(r.sys.with(what).shmat(shmid, 0, 0));
  try {
    if ('inline' in contents) {
      const data = contents.inline;
      for (let off = 0; off < data.length; off += PAGE_SIZE) {
        const page = data.subarray(off, off + PAGE_SIZE);
        if (page.some((b) => b !== 0)) r.memory.write(addr + BigInt(off), page);
      }
    } else {
      readPages(ctx, task, addr, shmid, contents.pagemapId);
    }
  } finally {
    r.sysRaw.shmdt(addr);
  }
}

function readPages(ctx: RestoreContext, task: RestoreTask, addr: bigint, shmid: number, pagemapId: number): void {
  const pm = ctx.store.read<PagemapEntry>('pagemap', shmPagemapName(pagemapId));
  const runs = pm.entries.filter((r) => (r.flags ?? 0) & PagemapFlag.PRESENT);
  if (!runs.length) return;
  const r = task.remote;
  const what = `shm id ${shmid}`;
  // amber's image, opened with amber's identity, which the task still has
  const fd = openAsTask(task, ctx.store.pagesPath((pm.head as { pagesId: number }).pagesId), O.RDONLY | O.CLOEXEC, { identity: 'current' });
  try {
    let offset = 0n;
    for (let i = 0; i < runs.length; i += IOV_MAX) {
      const batch = runs.slice(i, i + IOV_MAX);
      const iov = Buffer.alloc(batch.length * 16);
      let want = 0n;
      batch.forEach((run, k) => {
        iov.writeBigUInt64LE(addr + run.vaddr, k * 16);
        iov.writeBigUInt64LE(BigInt(run.nrPages * PAGE_SIZE), k * 16 + 8);
        want += BigInt(run.nrPages * PAGE_SIZE);
      });
      r.resetData();
      const n = BigInt(r.sys.with(what).preadv(fd, iov, batch.length, offset & 0xffffffffn, offset >> 32n));
      if (n !== want) throw new AmberError(`${what}: its pages file is short (${n} of ${want} bytes at offset ${offset})`);
      offset += n;
    }
  } finally {
    r.sysRaw.close(fd);
  }
}
