import { writeFileSync } from 'node:fs';
import {
  F, O, PAGE_IS, PAGE_SIZE, SYS, UFFD,
  type Logger, type PagemapHead, type RemoteSyscall,
} from '@amber/core';
import { findAmberTracker, softDirtyWorks, trackerSlot, type TrackerFd, type TrackingMode } from './tracker';
import type { PagemapEntry } from './pagemap';
import { uffdApi, uffdRegister } from './uffd';
import { hasPrivatePages, VMA, type VmaEntry } from './vmas';

/*
 * Arms, re-arms and removes the dirty-page tracking of one task. Why it works this way (and its
 * limits) is written down in tracker.ts.
 */

let softDirty: boolean | undefined;

export function trackingMode(): TrackingMode {
  softDirty ??= softDirtyWorks();
  return softDirty ? 'soft-dirty' : 'uffd-wp';
}

/** The pagemap category that says "written since armed" in a mode. */
export function dirtyCategory(mode: TrackingMode): number {
  return mode === 'soft-dirty' ? PAGE_IS.SOFT_DIRTY : PAGE_IS.WRITTEN;
}

/**
 * Whether the tracking a parent image recorded is still the one in the task: for uffd-wp, the
 * same userfaultfd (fd number and inode) must still be in place. Otherwise nothing it says can be
 * trusted and the task is dumped in full.
 */
export function trackingIntact(pid: number, head: PagemapHead | undefined): { mode: TrackingMode } | string {
  if (!head?.amberTracking) return 'the previous dump left no dirty tracking in it';
  const mode = head.amberTracking as TrackingMode;
  if (mode === 'soft-dirty') return trackingMode() === 'soft-dirty' ? { mode } : 'soft-dirty tracking is not available';
  const now = findAmberTracker(pid);
  if (!now) return `its tracking userfaultfd (fd ${head.amberTrackerFd}) is gone`;
  if (now.fd !== head.amberTrackerFd || now.ino !== head.amberTrackerIno) {
    return `its tracking userfaultfd is not the one the previous dump left (fd ${now.fd} ino ${now.ino})`;
  }
  return { mode };
}

/**
 * VMAs worth tracking: private anonymous memory. Not private file mappings: write-protecting
 * those makes the kernel put uffd-wp *markers* in their unpopulated ptes, which pagemap reports
 * as swapped pages, so the file's untouched pages would look like memory to dump (measured on
 * 6.18: a libc text mapping turned into 96 "swapped" pages). They are small, and dumped in full.
 */
function trackable(vmas: VmaEntry[]): VmaEntry[] {
  return vmas.filter((v) => hasPrivatePages(v) && (v.status & VMA.ANON_PRIVATE) !== 0);
}

/**
 * Arms the tracking in a frozen task, once its images are complete: a fresh userfaultfd (the old
 * one is closed first, which unregisters it), every private VMA registered and write-protected,
 * so PAGE_IS_WRITTEN starts from now. A fresh uffd per (pre-)dump means its inode names this
 * generation: an older image set no longer matches the task (trackingIntact).
 * Returns what the pagemap head records.
 */
export function armTracking(
  remote: RemoteSyscall, vmas: VmaEntry[], dumped: PagemapEntry[], log: Logger,
): Pick<PagemapHead, 'amberTracking' | 'amberTrackerFd' | 'amberTrackerIno'> {
  const pid = remote.pid;
  if (trackingMode() === 'soft-dirty') {
    writeFileSync(`/proc/${pid}/clear_refs`, '4');
    return { amberTracking: 'soft-dirty' };
  }
  removeTracking(remote, log);
  const tracker = createTracker(remote);
  const fd = tracker.fd;
  const tracked: VmaEntry[] = [];
  for (const v of trackable(vmas)) {
    const r = uffdRegister(remote, fd, v.start, v.end, UFFD.REGISTER_MODE_WP);
    // another userfaultfd owns it (EBUSY), or a kind uffd refuses: dumped in full next time
    if (r < 0) log.debug(`pid ${pid}: VMA 0x${v.start.toString(16)} not tracked (UFFDIO_REGISTER errno ${-r})`);
    else tracked.push(v);
  }
  // Only the pages just dumped are write-protected, not whole VMAs: UFFDIO_WRITEPROTECT puts
  // uffd-wp *markers* into the empty ptes of a range (measured on 6.18, anonymous memory too),
  // which allocates page tables over sparse areas (128 MiB for a 64 GiB one) and makes every hole
  // read as a swapped page. A page the task populates later has no bit, so it reads as WRITTEN.
  let armed = 0;
  for (const range of mergedRanges(dumped)) {
    if (!tracked.some((v) => range.start >= v.start && range.end <= v.end)) continue;
    const wp = Buffer.alloc(24);
    wp.writeBigUInt64LE(range.start, 0);
    wp.writeBigUInt64LE(range.end - range.start, 8);
    wp.writeBigUInt64LE(BigInt(UFFD.WRITEPROTECT_MODE_WP), 16);
    remote.resetData();
    const r = remote.sysRaw.ioctl(fd, UFFD.IOC_WRITEPROTECT, remote.stage(wp));
    // A range left unprotected only reads as all written: safe.
    if (r < 0) log.debug(`pid ${pid}: 0x${range.start.toString(16)} not write-protected (errno ${-r})`);
    else armed++;
  }
  log.debug(`pid ${pid}: dirty tracking armed: ${tracked.length} VMA(s), ${armed} range(s) write-protected, userfaultfd at fd ${fd}`);
  return { amberTracking: 'uffd-wp', amberTrackerFd: fd, amberTrackerIno: tracker.ino };
}

/** Dumped runs (whatever their flags) joined where they touch; runs never span two VMAs' gaps. */
function mergedRanges(runs: PagemapEntry[]): { start: bigint; end: bigint }[] {
  const out: { start: bigint; end: bigint }[] = [];
  for (const r of runs) {
    const start = r.vaddr;
    const end = r.vaddr + BigInt(r.nrPages * PAGE_SIZE);
    const last = out[out.length - 1];
    if (last && last.end === start) last.end = end;
    else out.push({ start, end });
  }
  return out;
}

/** userfaultfd(WP_ASYNC) created by the task itself, moved to amber's high fd slot. */
function createTracker(remote: RemoteSyscall): TrackerFd {
  const u = remote.sys.userfaultfd(O.CLOEXEC | O.NONBLOCK | UFFD.USER_MODE_ONLY);
  let fd = -1;
  try {
    uffdApi(remote, u, UFFD.FEATURE_WP_ASYNC, 'WP_ASYNC, needs Linux 6.7');
    for (let slot = trackerSlot(remote.pid); fd < 0 && slot >= 256; slot--) {
      const r = remote.sysRaw.fcntl(u, F.DUPFD_CLOEXEC, slot);
      if (r === slot) fd = r;
      else if (r >= 0) remote.sysRaw.close(r);
    }
    if (fd < 0) throw new Error(`pid ${remote.pid}: no free fd slot for the tracking userfaultfd`);
  } finally {
    remote.sysRaw.close(u);
  }
  const found = findAmberTracker(remote.pid);
  if (!found || found.fd !== fd) throw new Error(`pid ${remote.pid}: the tracking userfaultfd did not show up at fd ${fd}`);
  return found;
}

/**
 * Removes amber's tracking from a task: closing the last fd of the userfaultfd unregisters every
 * VMA and clears the uffd-wp bits (userfaultfd_release), leaving no trace.
 */
export function removeTracking(remote: RemoteSyscall, log: Logger): void {
  const tracker = findAmberTracker(remote.pid);
  if (!tracker) return;
  remote.sys.with('tracking userfaultfd').close(tracker.fd);
  log.debug(`pid ${remote.pid}: dirty tracking removed (closed fd ${tracker.fd})`);
}
