import { closeSync, openSync, readSync } from 'node:fs';
import { PAGE_SIZE, processVmRead, readMaps, FileRegistry, type CompareContext, type Difference, type FileDescription } from '@amber/core';
import { mapsName, readObjects } from './objects';
import type { PagemapEntry } from './pagemap';
import { protOf, type MmEntry } from './vmas';

const hex = (v: bigint) => `0x${v.toString(16)}`;

/** The live VMA layout (and with --pages, page contents) against the mm image. */
export function compareMemory(ctx: CompareContext, pid: number): Difference[] {
  const diffs: Difference[] = [];
  const add = (what: string, expected: string, actual: string) => diffs.push({ plugin: 'mm', pid, what, expected, actual });
  const mm = ctx.store.read<MmEntry>('mm', `mm-${pid}`).entries[0];
  const files = new FileRegistry(ctx.store.read<FileDescription>('files', 'files').entries);
  const describe = (start: bigint, end: bigint, prot: number, path: string) => `${hex(start)}-${hex(end)} prot ${prot} ${path}`.trim();
  const live = readMaps(pid).map((m) => ({ key: describe(m.start, m.end, protOf(m.perms), m.inode ? m.path : ''), start: m.start }));
  const objects = readObjects(ctx.store);
  const nameOf = (v: (typeof mm.vmas)[number]) => {
    const o = v.amberObject ? objects.get(v.amberObject) : undefined;
    if (o) return mapsName(o);
    return v.shmid ? files.regular(Number(v.shmid)).name : '';
  };
  const dumped = mm.vmas.map((v) => ({
    key: describe(v.start, v.end, v.prot, nameOf(v)),
    start: v.start,
  }));
  const liveKeys = new Set(live.map((l) => l.key));
  const dumpedKeys = new Set(dumped.map((d) => d.key));
  for (const d of dumped) if (!liveKeys.has(d.key)) add(`VMA at ${hex(d.start)}`, d.key, live.find((l) => l.start === d.start)?.key ?? 'absent');
  for (const l of live) if (!dumpedKeys.has(l.key) && !dumped.some((d) => d.start === l.start)) add(`VMA at ${hex(l.start)}`, 'absent', l.key);

  if (ctx.options.pages) diffs.push(...comparePages(ctx, pid));
  return diffs;
}

function comparePages(ctx: CompareContext, pid: number): Difference[] {
  const pm = ctx.store.read<PagemapEntry>('pagemap', `pagemap-${pid}`);
  const fd = openSync(ctx.store.pagesPath((pm.head as { pagesId: number }).pagesId), 'r');
  const diffs: Difference[] = [];
  const chunk = 8 << 20;
  const a = Buffer.alloc(chunk);
  const b = Buffer.alloc(chunk);
  let fileOff = 0;
  try {
    for (const run of pm.entries) {
      const len = run.nrPages * PAGE_SIZE;
      for (let off = 0; off < len && diffs.length < 20; off += chunk) {
        const n = Math.min(chunk, len - off);
        readSync(fd, a, 0, n, fileOff + off);
        processVmRead(pid, run.vaddr + BigInt(off), b, n);
        if (a.compare(b, 0, n, 0, n) !== 0) {
          let i = 0;
          while (a[i] === b[i]) i++;
          const page = run.vaddr + BigInt(off + i - (i % PAGE_SIZE));
          diffs.push({ plugin: 'mm', pid, what: `page at ${hex(page)}`, expected: 'dumped contents', actual: `differs from byte ${hex(run.vaddr + BigInt(off + i))}` });
        }
      }
      fileOff += len;
    }
  } finally {
    closeSync(fd);
  }
  return diffs;
}
