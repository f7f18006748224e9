import 'reflect-metadata';
import { closeSync, constants, existsSync, openSync, statfsSync } from 'node:fs';
import { release } from 'node:os';
import { dirname } from 'node:path';
import { inject, injectable } from 'tsyringe';
import {
  AmberError, KernelError, together, F, faultPoint, skippedForTest, ImageStore, IMAGE_STORE, LOGGER, type Logger, O, PAGE_SIZE, PagemapFlag, parseSmapsVmFlags, PR, procRead, readAuxv, readLink,
  PROT, resolvePrevDir, SYS, uptimeMs, type RemoteSyscall, type PagemapHead, type CompareContext, type FdResource, type FeatureCheck, type DumpContext, type PagesDumpPath, type FileStamp, type DumpTask, type Difference, type IdentityHolder, type ResourcePlugin, type RestoreContext,
} from '@amber/core';
import { rebuildAddressSpace } from './address-space';
import { compareMemory } from './compare';
import { mlockallOf } from './madvise';
import { adoptCriuSharedAnon } from './criu-shared';
import { ObjectDumper, objectHolders, objectKind, readObjects } from './objects';
import { dirtyRuns, dumpableRuns, scannedRuns, type PagemapEntry } from './pagemap';
import { locatePages, PagemapLevel } from './parent';
import { armTracking, dirtyCategory, removeTracking, trackingIntact } from './tracking';
import { checkStamps, stampOf } from './stamps';
import { isAmberTracker, softDirtyWorks, type TrackingMode } from './tracker';
import { spliceIntoImage } from './splice';
import { copyIntoImage } from './copy-into-image';
import { copyThroughAmber, writeInFileOrder, type DumpSegment, type Segment } from './transfer';
import { classify, classifyOwned, hasPrivatePages, joinVvar, refuseForeignShared, VMA, type MemoryObjectRef, type MmEntry, type VmaEntry } from './vmas';

export class UnsupportedMappingError extends AmberError {
  constructor(readonly pid: number, start: bigint, end: bigint, what: string) {
    super(`pid ${pid}: mapping 0x${start.toString(16)}-0x${end.toString(16)} is ${what}, which amber cannot dump yet`);
  }
}

/** A mapping another plugin owns (a MappingKind), when that plugin is not in the dump. */
export class UnownedMappingError extends AmberError {
  constructor(readonly pid: number, start: bigint, end: bigint, what: string, owner: string) {
    super(`pid ${pid}: mapping 0x${start.toString(16)}-0x${end.toString(16)} is ${what}, which only the ${owner} plugin dumps, and it is not in this dump`);
  }
}

/** Appends a run of pages, merged with the previous one when they touch and agree. */
function addRun(runs: PagemapEntry[], vaddr: bigint, nrPages: number, flags: number): void {
  const last = runs[runs.length - 1];
  if (last && last.flags === flags && last.vaddr + BigInt(last.nrPages * PAGE_SIZE) === vaddr) last.nrPages += nrPages;
  else runs.push({ vaddr, nrPages, flags });
}

/**
 * Up to this many bytes of pages, amber reads them through /proc/PID/mem itself: the task's own
 * copy needs about seven injected calls (open, fault signals, mmap, copy, munmap, close), some
 * 14 stops of the task, which cost more than copying a megabyte.
 */
const SMALL_DUMP_BYTES = 1 << 20;

/** Appends task memory to the pages file, copied by amber through /proc/PID/mem. */
function appendThroughAmber(remote: RemoteSyscall, path: string, segments: Segment[], progress: (n: number) => void): void {
  const fd = openSync(path, constants.O_WRONLY | constants.O_APPEND | constants.O_NOFOLLOW);
  try {
    copyThroughAmber(remote, fd, segments, null, progress);
  } finally {
    closeSync(fd);
  }
}

/**
 * Runs as segments, each saying whether the task may read it itself. Both lists are in address
 * order (the VMAs as /proc/PID/maps lists them), and runs never span two VMAs.
 */
function dumpSegments(vmas: VmaEntry[], present: PagemapEntry[]): DumpSegment[] {
  let v = 0;
  return present.map((r) => {
    while (v < vmas.length && vmas[v].end <= r.vaddr) v++;
    const vma = vmas[v];
    const readable = vma !== undefined && r.vaddr >= vma.start && (vma.prot & PROT.READ) !== 0;
    return { addr: r.vaddr, len: r.nrPages * PAGE_SIZE, readable };
  });
}

/**
 * How pages reach the pages file when --pages-via does not say. Measured here (npm run bench --
 * --only paths, whole commands, alternating): on tmpfs the task's copy into windows while amber
 * zeroes the back, 1 GiB 0.91 s (twice) against 0.99-1.17 by splice and 1.43-2.09 by writev,
 * 4 GiB 2.74 against 3.84 and 5.26; on ext4 splice (1 GiB: 574 ms against 1146 by copy and 1687
 * by writev), as CRIU does. The copy needs room for a window in the task's address space, and
 * falls back to writev without it.
 */
const TMPFS_MAGIC = 0x01021994;
function defaultPagesVia(fsType: number): PagesDumpPath {
  return fsType === TMPFS_MAGIC ? 'copy' : 'splice';
}

/** Memory: VMAs, pages, the vDSO, brk and the other mm fields. */
@injectable()
export class MemoryPlugin implements ResourcePlugin {
  readonly name = 'mm';
  readonly phase = 'memory' as const;

  constructor(@inject(IMAGE_STORE) private readonly store: ImageStore, @inject(LOGGER) private readonly log: Logger) {}

  async dump(ctx: DumpContext): Promise<void> {
    const objects = new ObjectDumper(ctx);
    // every task's brk and dumpable flag first, their stops overlapped; brk(0) cannot fail
    const asked = together(ctx.tasks, (task) => {
      task.remote.resetData();
      const ran = task.remote.beginQueryMany([{ name: 'brk', args: [0] }, { name: 'prctl', args: [PR.GET_DUMPABLE] }]);
      return () => {
        const [brk, dumpable] = ran();
        if (dumpable < 0) throw new KernelError('prctl(PR_GET_DUMPABLE) (in the task)', -dumpable, task.pid);
        return { brk: BigInt(brk), dumpable };
      };
    });
    for (const [i, task] of ctx.tasks.entries()) await this.dumpTask(ctx, task, objects, asked[i]);
    objects.finish();
  }

  async restore(ctx: RestoreContext): Promise<void> {
    const mms = ctx.tasks.map((task) => this.mmOf(this.store, task.pid));
    ctx.tasks.forEach((task, i) => checkStamps(task.pid, mms[i].amberFileStamps, ctx.files));
    const objects = readObjects(this.store);
    adoptCriuSharedAnon(this.store, ctx.files, mms.map((m) => m.vmas), objects);
    ctx.tasks.forEach((task, i) => refuseForeignShared(task.pid, mms[i].vmas));
    // a task's last stop (its mm fields) runs while the next task is rebuilt
    let pending: (() => void) | undefined;
    try {
      for (let i = 0; i < ctx.tasks.length; i++) {
        const task = ctx.tasks[i];
        const pm = this.store.read<PagemapEntry>('pagemap', `pagemap-${task.pid}`);
        // an incremental dump's unchanged pages are found down its parent chain
        const pieces = locatePages(PagemapLevel.of(this.store, task.pid, pm.entries, pm.head as PagemapHead));
        const finish = await rebuildAddressSpace(ctx, task, mms[i], pm.entries, pieces, objects);
        const previous = pending;
        pending = finish;
        previous?.();
        // a failure while a task is still in its last loop (the test of the undo below)
        if (i > 0) faultPoint('restore:memory-task');
      }
      const last = pending;
      pending = undefined;
      last?.();
    } catch (e) {
      // a task still in its loop is waited for before the restore undoes; the first error goes on
      try {
        pending?.();
      } catch {
        // reported by the error above
      }
      throw e;
    }
  }

  async compare(ctx: CompareContext): Promise<Difference[]> {
    return ctx.pids.flatMap((pid) => compareMemory(ctx, pid));
  }

  identities(ctx: CompareContext): IdentityHolder[] {
    const objects = readObjects(this.store);
    return ctx.pids.flatMap((pid) => {
      const { vmas } = this.store.read<MmEntry>('mm', `mm-${pid}`).entries[0];
      adoptCriuSharedAnon(this.store, ctx.files, [vmas], objects);
      return objectHolders(pid, vmas, objects);
    });
  }

  /** The dirty-tracking userfaultfd a pre-dump left in the task (tracker.ts); a final dump closes it. */
  hidesFd(fd: FdResource): boolean {
    return isAmberTracker(fd);
  }

  checks(): FeatureCheck[] {
    const [major, minor] = release().split('.').map(Number);
    return [
      { name: 'PAGEMAP_SCAN (Linux 6.7)', present: major > 6 || (major === 6 && minor >= 7), required: false, why: 'dirty-page tracking for pre-dump on kernels without soft-dirty' },
      { name: 'soft-dirty bits', present: softDirtyWorks(), required: false, why: 'dirty-page tracking for pre-dump (CONFIG_MEM_SOFT_DIRTY)' },
      { name: 'userfaultfd', present: existsSync('/proc/sys/vm/unprivileged_userfaultfd') || existsSync('/dev/userfaultfd'), required: false, why: 'restoring memory with UFFDIO_COPY (else preadv); dirty tracking for pre-dump without soft-dirty' },
    ];
  }

  addressRanges(store: ImageStore, pid: number) {
    return this.mmOf(store, pid).vmas.map((v) => ({ start: v.start, end: v.end }));
  }

  /** mm-<pid>, decoded once a run: the restore asks for every task's before its memory phase. */
  private mmOf(store: ImageStore, pid: number): MmEntry {
    if (store !== this.store) return store.readOne<MmEntry>('mm', `mm-${pid}`);
    let mm = this.mms.get(pid);
    if (!mm) this.mms.set(pid, (mm = store.readOne<MmEntry>('mm', `mm-${pid}`)));
    return mm;
  }

  private readonly mms = new Map<number, MmEntry>();

  private async dumpTask(ctx: DumpContext, task: DumpTask, objects: ObjectDumper, { brk, dumpable }: { brk: bigint; dumpable: number }): Promise<void> {
    const { pid, remote } = task;
    const vmFlags = parseSmapsVmFlags(procRead(pid, 'smaps'));
    const stamps = new Map<number, FileStamp>();
    const vmas: VmaEntry[] = task.maps.map((m) => {
      let fileId = 0;
      let object: MemoryObjectRef | undefined;
      const owner = ctx.mappings.claim(pid, m);
      if (owner) return classifyOwned(m, vmFlags.get(m.start) ?? [], owner.status, owner.dumpMapping(ctx, task, m));
      const kind = objectKind(m);
      if (kind === 'sysv') throw new UnownedMappingError(pid, m.start, m.end, `SysV shared memory (${m.path})`, 'ipc');
      if (kind) object = objects.ref(pid, m, kind);
      else if (m.inode !== 0 && m.path.startsWith('/')) {
        const writableShared = m.perms[3] === 's' && m.perms[1] === 'w';
        fileId = ctx.files.addRegular(m.path, writableShared ? O.RDWR : O.RDONLY);
        if (!stamps.has(fileId)) stamps.set(fileId, stampOf(fileId, `/proc/${pid}/map_files/${m.start.toString(16)}-${m.end.toString(16)}`));
      } else if (m.perms[3] === 's') {
        throw new UnsupportedMappingError(pid, m.start, m.end, `shared memory (${m.path || 'anonymous'})`);
      }
      return classify(m, vmFlags.get(m.start) ?? [], fileId, object);
    });
    const exeFileId = ctx.files.addRegular(readLink(pid, 'exe'), O.RDONLY);
    if (!stamps.has(exeFileId)) stamps.set(exeFileId, stampOf(exeFileId, `/proc/${pid}/exe`));

    const st = task.stat;
    const mm: MmEntry = {
      mmStartCode: st.startCode, mmEndCode: st.endCode, mmStartData: st.startData, mmEndData: st.endData,
      mmStartStack: st.startStack, mmStartBrk: st.startBrk, mmBrk: brk, mmArgStart: st.argStart, mmArgEnd: st.argEnd,
      mmEnvStart: st.envStart, mmEnvEnd: st.envEnd,
      exeFileId,
      mmSavedAuxv: withoutAtNull(readAuxv(pid)), vmas: joinVvar(vmas), dumpable, aios: [],
      amberMlockall: mlockallOf(vmFlags.get(remote.scratch.base)),
      amberFileStamps: [...stamps.values()],
    };

    const t0 = uptimeMs();
    const parent = this.parentOf(ctx, pid);
    const runs: PagemapEntry[] = [];
    const pagemapFd = openSync(`/proc/${pid}/pagemap`, 'r');
    let pages = 0;
    let inParent = 0;
    try {
      for (const v of vmas) {
        if (v.status & VMA.VDSO) {
          // CRIU's restore reads the dumped vDSO to decide whether the running one can take its place
          const nr = Number((v.end - v.start) / BigInt(PAGE_SIZE));
          addRun(runs, v.start, nr, PagemapFlag.PRESENT);
          pages += nr;
          continue;
        }
        if (!hasPrivatePages(v)) continue;
        // Only a VMA still registered since the parent was dumped ("uw") can say what did not change.
        if (parent && (parent.mode === 'soft-dirty' || vmFlags.get(v.start)?.includes('uw'))) {
          // runs never span two VMAs: restore makes each VMA it fills writable for the time
          const own: PagemapEntry[] = [];
          for (const r of dirtyRuns(pagemapFd, v, dirtyCategory(parent.mode))) {
            const end = r.vaddr + BigInt(r.nrPages) * BigInt(PAGE_SIZE);
            const fromParent = !r.dirty && parent.level.covers(r.vaddr, end);
            addRun(own, r.vaddr, r.nrPages, fromParent ? PagemapFlag.PARENT : PagemapFlag.PRESENT);
            if (fromParent) inParent += r.nrPages;
            else pages += r.nrPages;
          }
          runs.push(...own);
        } else {
          pages += scannedRuns(pagemapFd, v, runs) ?? dumpableRuns(pagemapFd, v, runs);
        }
      }
    } finally {
      closeSync(pagemapFd);
    }

    const t1 = uptimeMs();
    const { pagesId, path: pagesPath } = ctx.createPages();
    if (pages) await this.writePages(ctx, remote, vmas, runs, pagesPath, pages * PAGE_SIZE);
    this.log.debug(`pid ${pid}: pagemap scan ${(t1 - t0).toFixed(1)} ms, ${runs.length} runs; pages written in ${(uptimeMs() - t1).toFixed(1)} ms`);
    this.store.write('mm', `mm-${pid}`, [mm]);
    this.store.write('pagemap', `pagemap-${pid}`, runs, { head: { pagesId } });
    this.dumped(ctx).set(pid, { vmas, runs, pagesId });
    ctx.count('vmas', vmas.length);
    ctx.count('pages', pages);
    ctx.count('bytes', pages * PAGE_SIZE);
    if (parent) ctx.count('pages in parent', inParent);
  }

  /**
   * Moves the present pages into the pages file: by the task itself (splice on disk filesystems,
   * writev on tmpfs: defaultPagesVia), or by amber through /proc/PID/mem when there is at most
   * SMALL_DUMP_BYTES to move or the task cannot open the file. A filesystem that refuses splice
   * leaves it to writev. The pagesVia option (--pages-via) forces a path, so the bench can compare them.
   */
  private async writePages(ctx: DumpContext, remote: RemoteSyscall, vmas: VmaEntry[], runs: PagemapEntry[], pagesPath: string, total: number): Promise<void> {
    const pid = remote.pid;
    const segments = dumpSegments(vmas, runs.filter((r) => r.flags === PagemapFlag.PRESENT));
    let done = 0;
    const progress = (n: number) => ctx.options.progress?.((done += n), total, 'bytes');
    const room = statfsSync(dirname(pagesPath));
    const via = ctx.options.pagesVia ?? (total <= SMALL_DUMP_BYTES ? 'amber' : defaultPagesVia(room.type));
    if (!skippedForTest('dump:room-check') && room.bavail * room.bsize < total) {
      throw new AmberError(`pid ${pid}: ${dirname(pagesPath)} has no room for ${total} bytes of pages`);
    }
    const flags = via === 'copy' ? O.RDWR : via === 'splice' ? O.WRONLY : O.WRONLY | O.APPEND;
    const fd = via === 'amber' ? -1 : remote.sysRaw.open(remote.stageString(pagesPath), flags | O.CLOEXEC | O.NOFOLLOW, 0);
    this.log.debug(`pid ${pid}: ${total} bytes of pages via ${fd < 0 ? 'amber' : via}`);
    if (fd < 0) {
      // The task may not reach the image (another user, another mount namespace): copy through amber.
      if (via !== 'amber') this.log.debug(`pid ${pid} cannot open ${pagesPath} (errno ${-fd}); copying its pages through amber`);
      appendThroughAmber(remote, pagesPath, segments, progress);
      return;
    }
    try {
      if (via === 'splice') {
        if (spliceIntoImage(remote, fd, pagesPath, segments, progress, (line) => this.log.debug(line))) return;
        // nothing written; writev appends, as amber does for what the task may not read
        this.log.debug(`pid ${pid}: no pipe in the task, or no splice into ${dirname(pagesPath)}; writev instead`);
        remote.sys.with(pagesPath).fcntl(fd, F.SETFL, O.WRONLY | O.APPEND);
      }
      const copied = via === 'copy' && (await copyIntoImage(remote, fd, pagesPath, segments, progress, (line) => this.log.debug(line))) !== undefined;
      if (via === 'copy' && !copied) this.log.debug(`pid ${pid}: no room in its address space for a window of the pages file; writev instead`);
      if (!copied) writeInFileOrder(remote, fd, pagesPath, segments, 'append', progress);
    } finally {
      remote.sysRaw.close(fd);
    }
  }

  /**
   * After the images are complete: a pre-dump (or dump --track-mem --leave-running) arms the dirty
   * tracking and records it in the pagemap head; any other successful dump removes it. A failed
   * dump changes nothing, so the task keeps whatever tracking it had.
   */
  async afterDump(ctx: DumpContext, succeeded: boolean): Promise<void> {
    if (!succeeded) return;
    const keep = ctx.options.preDump || (ctx.options.trackMem && ctx.options.leaveRunning);
    for (const task of ctx.tasks) {
      const d = this.dumped(ctx).get(task.pid);
      if (!d) continue;
      faultPoint('dump:mm-tracking');
      if (!keep) {
        removeTracking(task.remote, this.log);
        continue;
      }
      const head: PagemapHead = { pagesId: d.pagesId, ...armTracking(task.remote, d.vmas, d.runs, this.log) };
      this.store.write('pagemap', `pagemap-${task.pid}`, d.runs, { head });
    }
  }

  private dumped(ctx: DumpContext) {
    return ctx.state('mm:dumped', () => new Map<number, { vmas: VmaEntry[]; runs: PagemapEntry[]; pagesId: number }>());
  }

  /** The previous image set of an incremental dump, if its tracking can still be trusted. */
  private parentOf(ctx: DumpContext, pid: number): { level: PagemapLevel; mode: TrackingMode } | undefined {
    const prev = ctx.options.prevImagesDir;
    if (!prev) return undefined;
    const dir = resolvePrevDir(ctx.options.imagesDir, prev);
    const level = PagemapLevel.open(dir, pid);
    if (!level) {
      this.log.warn(`pid ${pid}: ${dir} holds no memory of it; dumping all its pages`);
      return undefined;
    }
    const intact = trackingIntact(pid, level.head);
    if (typeof intact === 'string') {
      this.log.warn(`pid ${pid}: ${intact}; dumping all its pages`);
      return undefined;
    }
    return { level, mode: intact.mode };
  }
}

export default MemoryPlugin;

/**
 * The auxv without its closing AT_NULL pair: PR_SET_MM_MAP zero-fills the rest, and CRIU takes at
 * most 44 words (this kernel's auxv is 22 pairs and the AT_NULL).
 */
function withoutAtNull(auxv: bigint[]): bigint[] {
  return auxv.length >= 2 && auxv[auxv.length - 2] === 0n ? auxv.slice(0, -2) : auxv;
}
