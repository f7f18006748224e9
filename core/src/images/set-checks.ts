import * as fs from 'node:fs';
import * as path from 'node:path';
import { ImageError } from './errors';
import { PagemapFlag, type PagemapEntry, type PagemapHead, type PstreeEntry } from './types';
import type { ImageStore } from './store';

const PAGE = 4096n;
const PAGEMAP_RE = /^(pagemap-.+)\.img$/;

/**
 * Each pagemap against its pages file: runs page-aligned, in address order, not overlapping,
 * and the pages file exactly as long as its PRESENT runs. A pagemap cut at an entry boundary or
 * a pages file cut short decodes fine on its own; only the pair tells, before a task is made.
 */
export function checkPagemaps(store: ImageStore, names: string[]): void {
  for (const file of names) {
    const m = PAGEMAP_RE.exec(file);
    if (!m) continue;
    // the restore reads each pagemap next: it gets this decoding rather than a second one
    const { head, entries } = store.readAndKeep<PagemapEntry>('pagemap', m[1]);
    const pagesId = (head as PagemapHead).pagesId;
    let present = 0n;
    let end = -1n;
    entries.forEach((e, i) => {
      const where = `${file}: entry ${i}`;
      if (e.vaddr % PAGE !== 0n) throw new ImageError(`${where}: vaddr 0x${e.vaddr.toString(16)} is not page-aligned`);
      if (!Number.isSafeInteger(e.nrPages) || e.nrPages <= 0) throw new ImageError(`${where}: nr_pages ${e.nrPages} is not a positive count`);
      if (e.vaddr < end) throw new ImageError(`${where}: vaddr 0x${e.vaddr.toString(16)} overlaps or precedes the entry before it`);
      end = e.vaddr + BigInt(e.nrPages) * PAGE;
      if (end > 1n << 64n) throw new ImageError(`${where}: runs past the end of the address space`);
      const flags = e.flags ?? (e.inParent ? PagemapFlag.PARENT : PagemapFlag.PRESENT);
      if (flags & PagemapFlag.PRESENT) present += BigInt(e.nrPages);
    });
    const pages = `pages-${pagesId}.img`;
    const st = store.has(`pages-${pagesId}`) ? fs.lstatSync(path.join(store.dir, pages), { throwIfNoEntry: false }) : undefined;
    const size = st ? BigInt(st.size) : 0n;
    if (present > 0n && !st) throw new ImageError(`${pages}: missing from ${store.dir} (${file} has ${present} pages in it)`);
    if (size !== present * PAGE) {
      throw new ImageError(`${pages}: ${size} bytes, but ${file} has ${present} pages (${present * PAGE} bytes) in it: cut short or not this dump's`);
    }
  }
}

/** pstree.img, checked for what a restore builds on: a root, and each pid and thread id once. */
export function readPstree(store: ImageStore): PstreeEntry[] {
  const entries = store.read<PstreeEntry>('pstree', 'pstree').entries;
  if (!entries.length) throw new ImageError('pstree.img: holds no process (no root)');
  const seen = new Set<number>();
  entries.forEach((e, i) => {
    const where = `pstree.img: entry ${i} (pid ${e.pid})`;
    if (!(e.pid > 0)) throw new ImageError(`${where}: pid is not positive`);
    if (!e.threads.length) throw new ImageError(`${where}: lists no threads`);
    if (!e.threads.includes(e.pid)) throw new ImageError(`${where}: its threads do not include the pid itself`);
    for (const tid of e.threads) {
      if (!(tid > 0)) throw new ImageError(`${where}: thread id ${tid} is not positive`);
      if (seen.has(tid)) throw new ImageError(`${where}: thread id ${tid} appears twice in the tree`);
      seen.add(tid);
    }
  });
  return entries;
}
