import { existsSync, readFileSync, statSync } from 'node:fs';
import type { ImageStore } from '../images';
import { isAbsolute, join, resolve } from 'node:path';
import { UFFD } from '../kernel/constants';
import { AmberError } from '../kernel/errors';
import { listFds, readFdinfo, type FdInfo } from '../task/proc';
import { dump, type DumpReport } from './dump';
import type { DumpOptions } from './plugin';
import type { PluginRegistry } from './registry';

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
 * registration is dumped fully. The fd table hides this fd (isAmberTracker): it is amber's, not
 * the task's. A final dump closes it, which unregisters everything (no trace in the task, and
 * none in the restored process: the fd and the uffd VMA flags are not dumped).
 * Limits: the task sees one more fd (a close_range()/closefrom() in the task ends the tracking,
 * safely: the next dump is full); a task with its own userfaultfd on a VMA keeps that VMA
 * untracked; --prev-images-dir must name the latest (pre-)dump of the task, since each one
 * re-arms the tracking.
 *
 * Where the kernel has soft-dirty, that is used instead (clear_refs "4" arms, pagemap bit 55 /
 * PAGE_IS_SOFT_DIRTY reads), as CRIU does; nothing stays in the task then.
 */

export class PreDumpError extends AmberError {}

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

/** amber's tracker in a task, if it has one. */
export function findAmberTracker(pid: number): TrackerFd | undefined {
  for (const l of listFds(pid)) {
    if (l.link !== UFFD_LINK || l.fd < TRACKER_FD_MIN) continue;
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

/** The previous image set of a dump: --prev-images-dir is relative to the images dir (CRIU). */
export function resolvePrevDir(imagesDir: string, prev: string): string {
  return isAbsolute(prev) ? prev : resolve(imagesDir, prev);
}

/** Links DIR/parent to the previous image set, as CRIU does; restore follows it. */
export function linkParent(store: ImageStore, prev: string): void {
  const target = resolvePrevDir(store.dir, prev);
  if (!existsSync(join(target, 'inventory.img'))) {
    throw new PreDumpError(`--prev-images-dir ${prev}: ${target} is not a complete image set (no inventory.img)`);
  }
  store.linkParent(prev);
}

/** The parent image set of DIR (its `parent` link), if any. */
export function parentDirOf(imagesDir: string): string | undefined {
  const link = join(imagesDir, 'parent');
  return existsSync(link) ? link : undefined;
}

/**
 * Pre-dump: memory only, into DIR; the tree keeps running with dirty tracking armed, so a later
 * dump with --prev-images-dir DIR writes only what changed.
 */
export async function preDump(options: DumpOptions, registry: PluginRegistry): Promise<DumpReport> {
  if (!registry.get('mm')) throw new PreDumpError('pre-dump needs the mm plugin');
  return dump({ ...options, preDump: true, only: ['mm'], skip: undefined, leaveRunning: true, trackMem: true }, registry);
}
