import { closeSync, openSync, writeSync } from 'node:fs';
import { IOV_MAX, processVmRead, SYS, type RemoteSyscall } from '@amber/core';

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

const COPY_CHUNK = 8 << 20;

/** The slower path: process_vm_readv into one reused buffer, then write(2) to the image. */
export function copyThroughAmber(pid: number, segments: Segment[], path: string, progress?: (bytes: number) => void): number {
  const buf = Buffer.allocUnsafe(COPY_CHUNK);
  const fd = openSync(path, 'a');
  let total = 0;
  try {
    for (const seg of segments) {
      for (let off = 0; off < seg.len; ) {
        const n = processVmRead(pid, seg.addr + BigInt(off), buf, Math.min(COPY_CHUNK, seg.len - off));
        writeSync(fd, buf, 0, n);
        off += n;
        total += n;
        progress?.(n);
      }
    }
  } finally {
    closeSync(fd);
  }
  return total;
}
