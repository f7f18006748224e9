import { closeSync, openSync, readSync } from 'node:fs';
import { PAGE_SIZE, processVmRead, readMaps, type MapsEntry, type PagemapHead, type CompareContext, type Difference } from '@amber/core';
import { adoptCriuSharedAnon } from './criu-shared';
import { mapsName, readObjects } from './objects';
import type { PagemapEntry } from './pagemap';
import { locatePages, PagemapLevel } from './parent';
import { protOf, VMA, type MmEntry } from './vmas';

const SYSV_NAME = 'SysV shared memory';

const hex = (v: bigint) => `0x${v.toString(16)}`;

/** The live VMA layout (and with --pages, page contents) against the mm image. */
export function compareMemory(ctx: CompareContext, pid: number): Difference[] {
  const diffs: Difference[] = [];
  const add = (what: string, expected: string, actual: string) => diffs.push({ plugin: 'mm', pid, what, expected, actual });
  const mm = ctx.store.readOne<MmEntry>('mm', `mm-${pid}`);
  const files = ctx.files;
  const describe = (r: Area) => `${hex(r.start)}-${hex(r.end)} prot ${r.prot} ${r.path}`.trim();
  const keyed = (areas: Area[]) => coalesce(areas).map((a) => ({ key: describe(a), start: a.start }));
  const objects = readObjects(ctx.store);
  adoptCriuSharedAnon(ctx.store, files, [mm.vmas], objects);
  const nameOf = (v: (typeof mm.vmas)[number]) => {
    const o = v.amberObject ? objects.get(v.amberObject) : undefined;
    if (o) return mapsName(o);
    if (v.status & VMA.SYSVIPC) return SYSV_NAME; // which segment: the ipc plugin's compare says
    return v.shmid ? files.regular(Number(v.shmid)).name : '';
  };
  const liveName = (m: MapsEntry) => (m.path.startsWith('/SYSV') ? SYSV_NAME : !m.inode ? '' : m.path);
  const live = keyed(readMaps(pid).map((m) => ({ start: m.start, end: m.end, prot: protOf(m.perms), path: liveName(m), offset: m.offset })));
  const dumped = keyed(mm.vmas.map((v) => ({ start: v.start, end: v.end, prot: v.prot, path: nameOf(v), offset: v.pgoff })));
  const liveKeys = new Set(live.map((l) => l.key));
  const dumpedKeys = new Set(dumped.map((d) => d.key));
  for (const d of dumped) if (!liveKeys.has(d.key)) add(`VMA at ${hex(d.start)}`, d.key, live.find((l) => l.start === d.start)?.key ?? 'absent');
  for (const l of live) if (!dumpedKeys.has(l.key) && !dumped.some((d) => d.start === l.start)) add(`VMA at ${hex(l.start)}`, 'absent', l.key);

  if (ctx.options.pages) diffs.push(...comparePages(ctx, pid));
  return diffs;
}

interface Area {
  start: bigint;
  end: bigint;
  prot: number;
  path: string;
  offset: bigint;
}

/**
 * Adjacent areas that only differ in being two VMAs. The kernel merges or keeps apart neighbouring
 * anonymous VMAs depending on their history (anon_vma), which a restore cannot replay exactly.
 */
function coalesce(areas: Area[]): Area[] {
  const out: Area[] = [];
  for (const a of areas) {
    const last = out[out.length - 1];
    const contiguousFile = (l: Area) => !a.path || a.offset === l.offset + (a.start - l.start);
    if (last && last.end === a.start && contiguousFile(last) && last.prot === a.prot && last.path === a.path && !a.path.startsWith('[')) {
      last.end = a.end;
    } else out.push({ ...a });
  }
  return out;
}

function comparePages(ctx: CompareContext, pid: number): Difference[] {
  const pm = ctx.store.read<PagemapEntry>('pagemap', `pagemap-${pid}`);
  // pages of an incremental dump may live in its parent image sets
  const pieces = locatePages(PagemapLevel.of(ctx.store, pid, pm.entries, pm.head as PagemapHead));
  const fds = new Map<string, number>();
  const diffs: Difference[] = [];
  const chunk = 8 << 20;
  const a = Buffer.alloc(chunk);
  const b = Buffer.alloc(chunk);
  const owned = ctx.kernelOwned(pid);
  try {
    for (const piece of pieces) {
      let fd = fds.get(piece.path);
      if (fd === undefined) fds.set(piece.path, (fd = openSync(piece.path, 'r')));
      const len = piece.len;
      for (let off = 0; off < len && diffs.length < 20; off += chunk) {
        const n = Math.min(chunk, len - off);
        readSync(fd, a, 0, n, piece.offset + off);
        const at = piece.addr + BigInt(off);
        processVmRead(pid, at, b, n);
        for (const k of owned) {
          const from = k.start > at ? k.start : at;
          const to = k.end < at + BigInt(n) ? k.end : at + BigInt(n);
          if (from < to) b.copy(a, Number(from - at), Number(from - at), Number(to - at));
        }
        if (a.compare(b, 0, n, 0, n) !== 0) {
          let i = 0;
          while (a[i] === b[i]) i++;
          const page = piece.addr + BigInt(off + i - (i % PAGE_SIZE));
          diffs.push({ plugin: 'mm', pid, what: `page at ${hex(page)}`, expected: 'dumped contents', actual: `differs from byte ${hex(piece.addr + BigInt(off + i))}` });
        }
      }
    }
  } finally {
    for (const fd of fds.values()) closeSync(fd);
  }
  return diffs;
}
