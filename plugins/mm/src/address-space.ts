import {
  MADV, AmberError, MAP, MREMAP, O, openAsTask, openManyAsTask, PR, PR_SET_MM_MAP, PROT, readMaps, uptimeMs,
  type AddressRange, type RegFileEntry, type RemoteSyscall, type RestoreContext, type RestoreTask, type TableCall,
} from '@amber/core';
import { hasPrivatePages, isFileBacked, isSpecial, SPECIAL_NAMES, VMA, type MmEntry, type VmaEntry } from './vmas';
import { adviceCalls, lockCalls } from './madvise';
import type { ShmemObject } from './objects';
import { ObjectRestorer } from './objects-restore';
import type { PagemapEntry } from './pagemap';
import type { PagePiece } from './parent';
import { openAndReadStretches, readStretches, type Stretch } from './transfer';
import { fillByUffdCopy, USERFAULTFD_CALL } from './uffd-fill';
import { bridgePieces } from './bridge';

const PRCTL_MM_MAP_SIZE = 104;

/**
 * Rebuilds the address space of a freshly created task (a copy of the restore helper) from its
 * mm image: away with the helper's mappings, the vDSO moved to where it was, every VMA mapped at
 * its address, the pages read in by the task itself, then the mm fields set in one PR_SET_MM_MAP.
 * That last stop is left running: the returned function waits for it (together()'s contract:
 * it runs before anything else is done to the task), so that the next task's rebuilding overlaps it.
 */
export async function rebuildAddressSpace(
  ctx: RestoreContext, task: RestoreTask, mm: MmEntry, pagemap: PagemapEntry[], pieces: PagePiece[], objects: Map<number, ShmemObject>,
): Promise<() => void> {
  const remote = task.remote;
  const unowned = mm.vmas.find((v) => v.status & VMA.SYSVIPC && !ctx.mappings.byStatus(v.status));
  if (unowned) throw new AmberError(`pid ${task.pid}: VMA 0x${unowned.start.toString(16)} is SysV shared memory (shm id ${unowned.shmid}), and the ipc plugin that restores it is not in this restore`);
  const keep = ctx.reserved(task);
  // the helper's mappings go and the vDSO moves, from one read of its maps
  const helperMaps = readMaps(remote.pid);
  const clearing = [...helperUnmaps(helperMaps, keep), ...specialMoves(remote.pid, helperMaps, mm.vmas.filter((v) => isSpecial(v) && !(v.status & VMA.VSYSCALL)), keep)];

  // every file the plain mappings map, and the executable, opened in the clearing's stop
  const flagsOf = new Map<number, number>();
  for (const v of mm.vmas) {
    if (isSpecial(v) || !isFileBacked(v) || v.amberObject || ctx.mappings.byStatus(v.status)) continue;
    const writable = (v.status & VMA.FILE_SHARED) !== 0 && (v.prot & PROT.WRITE) !== 0;
    const id = Number(v.shmid);
    flagsOf.set(id, (flagsOf.get(id) ?? 0) | (writable ? O.RDWR : 0));
  }
  if (!flagsOf.has(mm.exeFileId)) flagsOf.set(mm.exeFileId, 0);
  const ids = [...flagsOf.keys()];
  const opened = openManyAsTask(task, ids.map((id) => ({ path: ctx.files.regular(id).name, flags: flagsOf.get(id)! | O.RDONLY | O.CLOEXEC })), clearing);
  const fileFds = new Map(ids.map((id, i) => [id, opened[i]]));
  const openFile = (v: VmaEntry): number => fileFds.get(Number(v.shmid))!;

  const filled = new Set<VmaEntry>();
  const withPages = mm.vmas.filter(hasPrivatePages);
  // indexed: a restore runs this for every task (no TurboFan: a for-of allocates per element)
  for (let i = 0; i < pagemap.length; i++) {
    const at = pagemap[i].vaddr;
    for (let j = 0; j < withPages.length; j++) if (at >= withPages[j].start && at < withPages[j].end) filled.add(withPages[j]);
  }

  const restorer = new ObjectRestorer(ctx, task, objects, mm.vmas);
  // plain mappings go in by the call loop, a run of them per stop; what another plugin or the
  // object restorer maps comes in between, in order
  let mmaps: TableCall[] = [];
  const mapPending = () => {
    remote.resetData();
    remote.invokeMany(mmaps);
    mmaps = [];
  };
  for (const v of mm.vmas) {
    if (isSpecial(v)) continue;
    const owner = ctx.mappings.byStatus(v.status);
    const prot = filled.has(v) ? v.prot | PROT.WRITE : v.prot;
    if (owner || v.amberObject) {
      mapPending();
      if (owner) owner.restoreMapping(ctx, task, v);
      else restorer.map(v, prot);
      continue;
    }
    const fd = isFileBacked(v) ? openFile(v) : -1;
    mmaps.push({ name: 'mmap', args: [v.start, v.end - v.start, prot, v.flags | MAP.FIXED, fd, v.pgoff], detail: `VMA 0x${v.start.toString(16)}-0x${v.end.toString(16)}` });
  }
  // CRIU's images hold the vDSO's pages too; the running kernel's own vDSO was moved in instead
  const specials = mm.vmas.filter(isSpecial);
  const ownPieces = pieces.filter((p) => !specials.some((v) => p.addr >= v.start && p.addr < v.end));
  // the userfaultfd the pages are copied through is made with the last mappings, in their stop
  let taskUffd: number | undefined;
  if (ctx.options.pagesFill !== 'preadv' && ownPieces.length) {
    remote.resetData();
    const { results, error } = remote.runCalls([...mmaps, USERFAULTFD_CALL]);
    if (error && results[mmaps.length] === undefined) throw error;
    if (!error) taskUffd = results[mmaps.length];
    mmaps = [];
  } else mapPending();
  restorer.finish();

  await fillPages(ctx, remote, ownPieces, mm.vmas, taskUffd);
  const settle: TableCall[] = [];
  for (const v of filled) {
    if (v.prot & PROT.WRITE) continue;
    settle.push({ name: 'mprotect', args: [v.start, v.end - v.start, v.prot], detail: `VMA 0x${v.start.toString(16)}` });
  }
  for (let i = 0; i < mm.vmas.length; i++) {
    const v = mm.vmas[i];
    // advice and locks are both kept in madv: most mappings have none, and skip the arithmetic
    if (!v.madv || isSpecial(v)) continue;
    settle.push(...adviceCalls(v), ...lockCalls(v));
  }
  const last: TableCall[] = [...fileFds.values(), ...(taskUffd !== undefined ? [taskUffd] : [])].map((fd) => ({ name: 'close', args: [fd] }));
  if (mm.amberMlockall) last.push({ name: 'mlockall', args: [mm.amberMlockall] });
  return beginSetMmFields(task, mm, fileFds.get(mm.exeFileId)!, settle, last);
}

type Mapping = ReturnType<typeof readMaps>[number];

function helperUnmaps(maps: Mapping[], keep: AddressRange[]): TableCall[] {
  return maps
    .filter((m) => !SPECIAL_NAMES.has(m.path) && !keep.some((k) => m.start < k.end && k.start < m.end))
    .map((m): TableCall => ({ name: 'munmap', args: [m.start, m.end - m.start], detail: `0x${m.start.toString(16)}` }));
}

/**
 * The mremaps that move [vvar], [vvar_vclock] and [vdso] to their dumped addresses. Code in the task jumps into
 * the vDSO and the vDSO reads vvar at fixed offsets, so they move together, keeping their spacing.
 */
function specialMoves(pid: number, maps: Mapping[], dumped: VmaEntry[], keep: AddressRange[]): TableCall[] {
  const current = maps.filter((m) => SPECIAL_NAMES.has(m.path) && m.path !== '[vsyscall]').map((m) => ({ ...m }));
  const want = [...dumped].sort((a, b) => Number(a.start - b.start));
  const here = specialShape(current.map((c) => ({ ...c, vvar: c.path.startsWith('[vvar') })));
  const then = specialShape(want.map((v) => ({ start: v.start, end: v.end, vvar: (v.status & VMA.VVAR) !== 0 })));
  if (here.join() !== then.join()) {
    throw new AmberError(
      `pid ${pid}: the vDSO layout of this kernel (${here.join(', ')}) differs from the dumped one (${then.join(', ')}); ` +
        'restore on a kernel like the one that dumped',
    );
  }
  if (!current.length || current[0].start === want[0].start) return [];
  const lo = (r: { start: bigint }[]) => r[0].start;
  const span = current[current.length - 1].end - current[0].start;
  const overlaps = (a: bigint) => [...keep, { start: lo(current), end: lo(current) + span }, { start: lo(want), end: lo(want) + span }].some((k) => a < k.end && k.start < a + span);
  let temp = 0x200000000000n;
  while (overlaps(temp)) temp += 0x10000000n;
  const moves: TableCall[] = [];
  const move = (from: bigint, to: bigint) => {
    current.forEach((c) => {
      const size = c.end - c.start;
      moves.push({ name: 'mremap', args: [c.start - from + from, size, size, MREMAP.MAYMOVE | MREMAP.FIXED, c.start - from + to], detail: c.path });
      c.end = c.start - from + to + size;
      c.start = c.start - from + to;
    });
  };
  move(lo(current), temp);
  move(temp, lo(want));
  return moves;
}

/**
 * The special areas as "vvar 6p", "vdso 2p": [vvar] and [vvar_vclock] next to each other count as
 * one vvar, since CRIU stores them as one VMA entry.
 */
function specialShape(areas: { start: bigint; end: bigint; vvar: boolean }[]): string[] {
  const out: { end: bigint; vvar: boolean; pages: bigint }[] = [];
  for (const a of areas) {
    const last = out[out.length - 1];
    if (last && a.vvar && last.vvar && last.end === a.start) [last.end, last.pages] = [a.end, last.pages + (a.end - a.start) / 4096n];
    else out.push({ end: a.end, vvar: a.vvar, pages: (a.end - a.start) / 4096n });
  }
  return out.map((a) => `${a.vvar ? 'vvar' : 'vdso'} ${a.pages}p`);
}

/** `before`, PR_SET_MM_MAP with exeFd (the task's fd of its executable), then `after`, in one stop: started; the returned half waits for it. */
function beginSetMmFields(task: RestoreTask, mm: MmEntry, exeFd: number, before: TableCall[], after: TableCall[]): () => void {
  const remote = task.remote;
  remote.resetData();
  const auxv = Buffer.alloc(mm.mmSavedAuxv.length * 8);
  mm.mmSavedAuxv.forEach((v, i) => auxv.writeBigUInt64LE(v, i * 8));
  const auxvAddr = remote.stage(auxv);
  const map = Buffer.alloc(PRCTL_MM_MAP_SIZE);
  [mm.mmStartCode, mm.mmEndCode, mm.mmStartData, mm.mmEndData, mm.mmStartBrk, mm.mmBrk, mm.mmStartStack,
    mm.mmArgStart, mm.mmArgEnd, mm.mmEnvStart, mm.mmEnvEnd, auxvAddr].forEach((v, i) => map.writeBigUInt64LE(v, i * 8));
  map.writeUInt32LE(auxv.length, 96);
  map.writeUInt32LE(exeFd, 100);
  const calls: TableCall[] = [{ name: 'prctl', args: [PR.SET_MM, PR_SET_MM_MAP, remote.stage(map), PRCTL_MM_MAP_SIZE, 0], detail: 'PR_SET_MM_MAP' }];
  if (mm.dumpable !== undefined) calls.push({ name: 'prctl', args: [PR.SET_DUMPABLE, mm.dumpable] });
  const loop = remote.beginCalls([...before, ...calls, ...after]);
  return () => {
    const { error } = loop();
    if (error) throw error;
  };
}

/**
 * Reads every page in, by the task itself: one preadv per stretch of a pages file that is read
 * in order (one stretch for a plain dump; an incremental one also reads its parents' files).
 */
async function fillPages(ctx: RestoreContext, remote: RemoteSyscall, allPieces: PagePiece[], vmas: VmaEntry[], taskUffd?: number): Promise<void> {
  if (!allPieces.length) return;
  // A chain's pieces are widened and put oldest first (later ones overwrite); UFFDIO_COPY cannot
  // overwrite, so it only takes the oldest set's pieces, written first.
  const ordered = new Set(allPieces.map((p) => p.depth)).size > 1 ? bridgePieces(allPieces) : allPieces;
  const oldest = ordered.reduce((m, p) => Math.max(m, p.depth), 0);
  const total = ordered.reduce((n, p) => n + p.len, 0);
  let done = 0;
  const progress = (n: number) => ctx.options.progress?.((done += n), total, 'bytes');
  let pieces = ordered;
  // UFFDIO_COPY by default, on every core (measured: 1 GiB in ~0.28 s on 2 cores, against ~0.45 s
  // for populate + preadv);
  // the pagesFill option (--pages-fill preadv) forces the other path, so `npm run bench` can compare the two.
  if (ctx.options.pagesFill !== 'preadv') {
    const t0 = uptimeMs();
    const first = await fillByUffdCopy(remote, vmas, ordered.filter((p) => p.depth === oldest), progress, taskUffd);
    ctx.log.debug(`pid ${remote.pid}: ${done} bytes filled by UFFDIO_COPY in ${(uptimeMs() - t0).toFixed(1)} ms`);
    pieces = [...first, ...ordered.filter((p) => p.depth !== oldest)];
  }
  if (!pieces.length) return;
  // What is left goes through preadv. Faulting the pages in one madvise per run beats taking a
  // fault per page inside preadv (measured: 1 GiB in ~0.46 s instead of ~0.52 s). Best effort:
  // kernels < 5.14 lack it.
  // Only the first writer of a page populates it: newer pieces of a chain land on present pages.
  const ranges: { addr: bigint; len: number }[] = [];
  for (const p of [...pieces].filter((q) => q.depth === oldest).sort((a, b) => (a.addr < b.addr ? -1 : 1))) {
    const last = ranges[ranges.length - 1];
    if (last && last.addr + BigInt(last.len) === p.addr) last.len += p.len;
    else ranges.push({ addr: p.addr, len: p.len });
  }
  let populate = ranges.map((r): TableCall => ({ name: 'madvise', args: [r.addr, r.len, MADV.POPULATE_WRITE] }));

  // files in the order of their first piece: oldest set first
  const byFile = new Map<string, Stretch[]>();
  for (const p of pieces) if (!byFile.has(p.path)) byFile.set(p.path, stretchesOf(pieces.filter((q) => q.path === p.path)));
  ctx.log.debug(`pid ${remote.pid}: ${pieces.reduce((n, p) => n + p.len, 0)} bytes read in by preadv in the task`);
  // one pages file (a plain dump's): populate, open, read and close in one stop
  if (byFile.size === 1) {
    const [[path, stretches]] = byFile;
    const done = openAndReadStretches(remote, path, stretches, populate, progress);
    if (done.beforeRan === populate.length) byFile.set(path, done.rest);
    populate = populate.slice(done.beforeRan + 1);
  }
  // best effort: the calls after one that fails still run
  for (let left = populate; left.length; ) {
    const { results } = remote.runCalls(left);
    left = left.slice(results.filter((r) => r !== undefined).length);
  }
  for (const [path, stretches] of byFile) {
    if (!stretches.length) continue;
    // amber's image: opened with amber's identity, which the task still has
    const fd = openAsTask({ remote }, path, O.RDONLY | O.CLOEXEC, { identity: 'current' });
    try {
      readStretches(remote, fd, stretches, progress);
    } finally {
      remote.sysRaw.close(fd);
    }
  }
}

/** A pages file's pieces as the stretches of it read in order. */
function stretchesOf(pieces: PagePiece[]): Stretch[] {
  const list = [...pieces].sort((a, b) => a.offset - b.offset);
  const stretches: Stretch[] = [];
  for (let i = 0; i < list.length; ) {
    let j = i + 1;
    while (j < list.length && list[j].offset === list[j - 1].offset + list[j - 1].len) j++;
    stretches.push({ segments: list.slice(i, j).map((p) => ({ addr: p.addr, len: p.len })), fileOffset: list[i].offset });
    i = j;
  }
  return stretches;
}
