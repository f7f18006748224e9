/**
 * A worker thread of copyIntoImage: writes zeroes over the far end of the pages file, a window at
 * a time from the back, while the task copies pages in from the front. On this VM the first write
 * to a page nobody used lately costs more than the copy (the host backs guest memory lazily), and
 * the task's copy is one thread: this sets the other core to that work (4 GiB: ~8.6 s -> ~5 s in
 * a C model of it). Every page ends up written by whoever gets there first, so the two need no
 * lock, only the task's progress to know where to stop. Failing here costs speed, nothing else.
 */
import { closeSync, constants, openSync } from 'node:fs';
import { workerData } from 'node:worker_threads';
import { MADV, MAP, PROT, SYS, syscallRaw } from '@amber/core/dist/kernel';

export interface PopulateJob {
  path: string;
  total: number;
  /** BigInt64Array[1]: how far the task's copy has got, in bytes of the file */
  front: SharedArrayBuffer;
}

/** Small: while it is mapped, a window counts in amber's resident size. */
const WINDOW = 8 << 20;
/** Stop short of the task's copy: it is about to write there anyway. */
const LEAD = 64 << 20;

function populateFromTheBack(job: PopulateJob): void {
  const front = new BigInt64Array(job.front);
  const fd = openSync(job.path, constants.O_RDWR | constants.O_NOFOLLOW);
  try {
    for (let end = job.total; end > 0; ) {
      const start = Math.max(0, end - WINDOW);
      if (start < Number(Atomics.load(front, 0)) + LEAD) return;
      const len = end - start;
      const at = syscallRaw(SYS.mmap, [0, len, PROT.READ | PROT.WRITE, MAP.SHARED, fd, start]);
      if (at < 0 && at > -4096) return;
      syscallRaw(SYS.madvise, [at, len, MADV.POPULATE_WRITE]);
      syscallRaw(SYS.munmap, [at, len]);
      end = start;
    }
  } finally {
    closeSync(fd);
  }
}

populateFromTheBack(workerData as PopulateJob);
