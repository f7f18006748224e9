import { PAGEMAP_SCAN, PM_SCAN_ARG_SIZE, SYS } from './constants';
import { writeU64 } from './bytes';
import { addressOf, syscallRaw } from './libc';

/** What one PAGEMAP_SCAN asks (pagemapScanInto). */
export interface PagemapScanQuery {
  start: bigint;
  end: bigint;
  vec: Buffer;
  inverted: number;
  required: number;
  anyOf: number;
  returned: number;
  maxPages?: number;
  /** PM_SCAN_* */
  flags?: number;
}

/**
 * One PAGEMAP_SCAN ioctl on a pagemap fd (Linux 6.7, linux/fs.h struct pm_scan_arg): the kernel
 * walks [start, end) and writes the regions whose pages match into `vec` (24 bytes each: start,
 * end, categories). A page matches when its categories, with those of `inverted` flipped, have
 * every bit of `required`, and at least one of `anyOf` (when not 0). `maxPages` (0: no limit)
 * ends the walk once that many pages have matched. Returns the number of regions, or -errno
 * (ENOTTY/EINVAL on a kernel without it). `arg` is left as the kernel wrote it: its walk_end
 * (offset 32) says where it stopped.
 */
export function pagemapScanInto(pagemapFd: number, arg: Buffer, q: PagemapScanQuery): number {
  arg.fill(0, 0, PM_SCAN_ARG_SIZE);
  writeU64(arg, 0, BigInt(PM_SCAN_ARG_SIZE));
  writeU64(arg, 8, BigInt(q.flags ?? 0));
  writeU64(arg, 16, q.start);
  writeU64(arg, 24, q.end);
  writeU64(arg, 40, addressOf(q.vec));
  writeU64(arg, 48, BigInt(Math.floor(q.vec.length / 24)));
  writeU64(arg, 56, BigInt(q.maxPages ?? 0));
  writeU64(arg, 64, BigInt(q.inverted));
  writeU64(arg, 72, BigInt(q.required));
  writeU64(arg, 80, BigInt(q.anyOf));
  writeU64(arg, 88, BigInt(q.returned));
  return syscallRaw(SYS.ioctl, [pagemapFd, PAGEMAP_SCAN, addressOf(arg)]);
}
