import { closeSync, openSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs';
import { addressOf, listFds, readFdinfo, UFFD, type FdInfo } from '@amber/core';

/*
 * Incremental dumps: `amber pre-dump` writes a task's memory and leaves it running with dirty-page
 * tracking armed; a later `dump --prev-images-dir` (or a chained pre-dump) writes only the pages
 * written since, and its pagemap points at the parent image set (a `parent` symlink) for the rest.
 *
 * Tracking without soft-dirty (this kernel has no CONFIG_MEM_SOFT_DIRTY): a userfaultfd in
 * write-protect *async* mode (UFFD_FEATURE_WP_ASYNC, Linux 6.7). What the kernel does:
 *   - UFFDIO_REGISTER(MODE_WP) marks each VMA VM_UFFD_WP (smaps VmFlags "uw") and ties it to the
 *     uffd's context; UFFDIO_WRITEPROTECT sets the uffd-wp bit in every pte of the range (and in
 *     swap ptes) and, in empty ptes, installs uffd-wp *markers* (measured on 6.18 with WP_ASYNC,
 *     anonymous memory included): those allocate page tables and read as swapped pages. So amber
 *     protects only the pages it has just dumped, never whole VMAs; a page populated later has no
 *     bit and reads as WRITTEN. A protected page the task zaps (MADV_DONTNEED) leaves a marker:
 *     a page that is not present is therefore never taken as unchanged.
 *   - In async mode a write to a protected pte does not queue a fault message: the fault handler
 *     just clears the bit and lets the write go on. Nobody has to read the uffd.
 *   - PAGEMAP_SCAN reports PAGE_IS_WRITTEN for every pte whose uffd-wp bit is clear: written
 *     since the last protect, newly populated, or in a VMA that is not registered at all. So
 *     "not WRITTEN" can only mean "still protected since the last (pre-)dump": safe to reference.
 *   - The registration lives as long as the uffd *file*: when its last reference goes
 *     (userfaultfd_release) every VMA is unregistered and the uffd-wp bits cleared; from then on
 *     every page reads as WRITTEN. Holding a copy in amber (pidfd_getfd) would not survive amber
 *     exiting between the pre-dump and the dump.
 *   - fork without UFFD_FEATURE_EVENT_FORK drops the registration in the child; mremap without
 *     EVENT_REMAP drops it on the moved VMA; exec closes the (close-on-exec) uffd.
 * Design: the uffd stays in the task itself, at a high fd number (the top of min(RLIMIT_NOFILE,
 * 1024)), close-on-exec and non-blocking. The image records its fd number and inode (each uffd
 * has its own anon inode); the next dump checks both before trusting any "not written" page, and
 * only VMAs that still show "uw" are dumped incrementally: a VMA that is new, remapped or lost its
 * registration is dumped fully. The core's fd table hides this fd (the plugin's hidesFd, which
 * asks isAmberTracker): it is amber's, not the task's. A final dump closes it, which unregisters everything (no trace in the task, and
 * none in the restored process: the fd and the uffd VMA flags are not dumped).
 * Limits: the task sees one more fd (a close_range()/closefrom() in the task ends the tracking,
 * safely: the next dump is full); a task with its own userfaultfd on a VMA keeps that VMA
 * untracked; --prev-images-dir must name the latest (pre-)dump of the task, since each one
 * re-arms the tracking.
 *
 * Where the kernel has soft-dirty, that is used instead (clear_refs "4" arms, pagemap bit 55 /
 * PAGE_IS_SOFT_DIRTY reads), as CRIU does; nothing stays in the task then.
 */

export type TrackingMode = 'uffd-wp' | 'soft-dirty';

/** The fd link of a userfaultfd. */
export const UFFD_LINK = 'anon_inode:[userfaultfd]';
/** amber puts its tracker at the top of the fd table, never below this. */
export const TRACKER_FD_MIN = 256;

/**
 * amber's own dirty-tracking userfaultfd, left in the task by a pre-dump: not part of the task's
 * state, so the fd table neither dumps nor compares it (and a final dump closes it).
 */
export function isAmberTracker(fd: { fd: number; link: string; info?: FdInfo }): boolean {
  if (fd.link !== UFFD_LINK || fd.fd < TRACKER_FD_MIN || !fd.info) return false;
  const api = fd.info.extra.get('API'); // "aa:<features>:<ioctls>"
  const features = api ? parseInt(api.split(':')[1] ?? '0', 16) : 0;
  return (features & UFFD.FEATURE_WP_ASYNC) !== 0;
}

export interface TrackerFd {
  fd: number;
  ino: bigint;
}

/** amber's tracker in a task, if it has one: only fds from TRACKER_FD_MIN up are looked at (most tasks have none). */
export function findAmberTracker(pid: number): TrackerFd | undefined {
  for (const l of listFds(pid, TRACKER_FD_MIN)) {
    if (l.link !== UFFD_LINK) continue;
    const info = readFdinfo(pid, l.fd);
    if (isAmberTracker({ ...l, info })) return { fd: l.fd, ino: statSync(`/proc/${pid}/fd/${l.fd}`, { bigint: true }).ino };
  }
  return undefined;
}

/** The fd number amber parks its tracker at: the highest the task may open, at most 1023. */
export function trackerSlot(pid: number): number {
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
  const soft = !m || m[1] === 'unlimited' ? 1024 : Number(m[1]);
  return Math.max(TRACKER_FD_MIN, Math.min(soft, 1024) - 1);
}

/** clear_refs accepts "4" even without CONFIG_MEM_SOFT_DIRTY; only a dirtied page tells. */
export function softDirtyWorks(): boolean {
  try {
    const probe = Buffer.alloc(4096 * 2);
    const page = (addressOf(probe) / 4096n + 1n) * 4096n;
    writeFileSync('/proc/self/clear_refs', '4');
    probe[Number(page - addressOf(probe))] = 1;
    const fd = openSync('/proc/self/pagemap', 'r');
    const entry = Buffer.alloc(8);
    readSync(fd, entry, 0, 8, Number(page / 4096n) * 8);
    closeSync(fd);
    return (entry.readBigUInt64LE(0) & (1n << 55n)) !== 0n;
  } catch {
    return false;
  }
}
