// Generated from core/proto/pagemap.proto by `npm run protos` (scripts/protos.js): do not edit.

export interface PagemapHead {
  /** the N of pages-N.img holding this task's PRESENT pages */
  pagesId: number;
  /**
   * amber: dirty-page tracking left in the task by a pre-dump (or dump --track-mem):
   * "uffd-wp" or "soft-dirty"; for uffd-wp, the task's fd holding the userfaultfd and its inode
   */
  amberTracking?: string;
  amberTrackerFd?: number;
  amberTrackerIno?: bigint;
}

export interface PagemapEntry {
  vaddr: bigint;
  nrPages: number;
  /** older images said "in parent" here; newer ones use flags bit PARENT */
  inParent?: boolean;
  /** PARENT = 1, LAZY = 2, PRESENT = 4 */
  flags?: number;
  /** CRIU 4.x: the page count as 64 bits (it writes 0 in nr_pages); amber writes both */
  nrPages64?: bigint;
}
