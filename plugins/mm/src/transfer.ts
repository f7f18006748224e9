import { IOV_MAX, SYS, type RemoteSyscall } from '@amber/core';

export interface Segment {
  addr: bigint;
  len: number;
}

const MAX_BYTES_PER_CALL = 1 << 30;

/**
 * Moves task memory to or from a file with writev/preadv injected into the task itself, so the
 * kernel copies pages straight between the task and the page cache: amber never holds them.
 * Up to IOV_MAX segments per call.
 */
export function transfer(
  remote: RemoteSyscall,
  op: 'writev' | 'preadv',
  fd: number,
  segments: Segment[],
  fileOffset = 0,
  progress?: (bytes: number) => void,
): number {
  let idx = 0;
  let off = 0;
  let total = 0;
  const iov = Buffer.alloc(IOV_MAX * 16);
  while (idx < segments.length) {
    let count = 0;
    let bytes = 0;
    for (let i = idx, o = off; i < segments.length && count < IOV_MAX && bytes < MAX_BYTES_PER_CALL; i++, o = 0) {
      const len = Math.min(segments[i].len - o, MAX_BYTES_PER_CALL - bytes);
      iov.writeBigUInt64LE(segments[i].addr + BigInt(o), count * 16);
      iov.writeBigUInt64LE(BigInt(len), count * 16 + 8);
      bytes += len;
      count++;
    }
    remote.resetData();
    const iovAddr = remote.stage(iov.subarray(0, count * 16));
    const n =
      op === 'writev'
        ? remote.call('writev (pages)', SYS.writev, [fd, iovAddr, count])
        : remote.call('preadv (pages)', SYS.preadv, [fd, iovAddr, count, fileOffset + total, 0]);
    if (n === 0) throw new Error(`${op} of pages in pid ${remote.pid} made no progress`);
    total += n;
    progress?.(n);
    // advance (idx, off) by n bytes
    let left = n;
    while (left > 0) {
      const rest = segments[idx].len - off;
      if (left >= rest) {
        left -= rest;
        idx++;
        off = 0;
      } else {
        off += left;
        left = 0;
      }
    }
  }
  return total;
}
