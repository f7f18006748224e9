import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import {
  close, KernelError, O, readMapped, SEEK_CUR, SEEK_DATA, SEEK_HOLE, SEEK_SET, SYS, syscall, syscallRaw, takeFd, writeAll, type RemoteSyscall,
} from '@amber/core';

/** A run of data in a sparse file: everything else is a hole. */
export interface Extent {
  off: bigint;
  data: Buffer;
}

/** The contents of a ghost file by its data extents; `sparse` when holes are left out. */
export interface GhostData {
  size: bigint;
  extents: Extent[];
  sparse: boolean;
  dataBytes: number;
}

const ENXIO = 6;

/** Where the file behind a task's fd has data (SEEK_DATA / SEEK_HOLE), without reading it. */
function dataRuns(fd: number, size: bigint, what: string): { off: bigint; len: bigint }[] {
  const runs: { off: bigint; len: bigint }[] = [];
  for (let pos = 0n; pos < size;) {
    const data = syscallRaw(SYS.lseek, [fd, pos, SEEK_DATA]);
    if (data === -ENXIO) break; // only a hole after pos
    if (data < 0) throw new KernelError('lseek(SEEK_DATA)', -data, undefined, what);
    const hole = BigInt(syscall('lseek(SEEK_HOLE)', SYS.lseek, [fd, data, SEEK_HOLE], { detail: what }));
    runs.push({ off: BigInt(data), len: hole - BigInt(data) });
    pos = hole;
  }
  return runs;
}

/**
 * Measures the data of the file behind a task's fd; reads it only when `limit` allows. The task
 * must not see this (it may watch the file with fanotify or inotify): amber works on its own copy
 * of the task's description (pidfd_getfd: no FAN_OPEN / IN_OPEN, and closing a copy of a
 * description the task still holds raises no close event), puts the description's offset back
 * after SEEK_DATA / SEEK_HOLE moved it, and reads through a mapping (no FAN_ACCESS / IN_ACCESS).
 * Only a description that cannot be mapped (write-only) is read through a new open, which the
 * task can see.
 */
export function readGhostData(pid: number, fd: number, limit: number, tooBig: (dataBytes: number, size: bigint) => Error): GhostData {
  const what = `fd ${fd} of pid ${pid}`;
  const copy = takeFd(pid, fd);
  let reopened: number | undefined;
  try {
    const size = fstatSync(copy, { bigint: true }).size;
    const pos = syscall('lseek(SEEK_CUR)', SYS.lseek, [copy, 0, SEEK_CUR], { pid, detail: what });
    let runs: { off: bigint; len: bigint }[];
    try {
      runs = dataRuns(copy, size, what);
    } finally {
      syscall('lseek(SEEK_SET)', SYS.lseek, [copy, pos, SEEK_SET], { pid, detail: what });
    }
    const dataBytes = runs.reduce((n, r) => n + Number(r.len), 0);
    if (dataBytes > limit) throw tooBig(dataBytes, size);
    const extents = runs.map(({ off, len }) => {
      const data = Buffer.alloc(Number(len));
      if (reopened === undefined) {
        const r = readMapped(copy, off, data, what);
        if (r >= 0) return { off, data };
        reopened = openSync(`/proc/${pid}/fd/${fd}`, O.RDONLY);
      }
      for (let got = 0; got < data.length;) {
        const n = readSync(reopened, data, got, data.length - got, off + BigInt(got));
        if (n === 0) break; // truncated meanwhile: the file is frozen with its task, so not expected
        got += n;
      }
      return { off, data };
    });
    const sparse = !(extents.length === 0 ? size === 0n : extents.length === 1 && extents[0].off === 0n && BigInt(dataBytes) === size);
    return { size, extents, sparse, dataBytes };
  } finally {
    if (reopened !== undefined) closeSync(reopened);
    close(copy);
  }
}

// CRIU's ghost chunks: after the ghost_file_entry (chunks = true), each run is a framed
// ghost_chunk_entry { uint64 len = 1; uint64 off = 2; } followed by its len bytes.

function varint(n: bigint): number[] {
  const out: number[] = [];
  do {
    let b = Number(n & 0x7fn);
    n >>= 7n;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}

export function encodeChunks(extents: Extent[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of extents) {
    const msg = Buffer.from([0x08, ...varint(BigInt(e.data.length)), 0x10, ...varint(e.off)]);
    const len = Buffer.alloc(4);
    len.writeUInt32LE(msg.length);
    parts.push(len, msg, e.data);
  }
  return Buffer.concat(parts);
}

export function decodeChunks(blob: Buffer, what: string): Extent[] {
  const out: Extent[] = [];
  for (let at = 0; at < blob.length;) {
    if (at + 4 > blob.length) throw new Error(`${what}: truncated chunk header at ${at}`);
    const end = at + 4 + blob.readUInt32LE(at);
    const fields = new Map<number, bigint>();
    for (let p = at + 4; p < end;) {
      const key = blob[p++];
      let v = 0n;
      for (let shift = 0n; ; shift += 7n) {
        if (p >= end) throw new Error(`${what}: bad chunk entry at ${at}`);
        const b = blob[p++];
        v |= BigInt(b & 0x7f) << shift;
        if (!(b & 0x80)) break;
      }
      fields.set(key >> 3, v);
    }
    const len = Number(fields.get(1) ?? 0n);
    if (end + len > blob.length) throw new Error(`${what}: chunk at ${at} is truncated`);
    out.push({ off: fields.get(2) ?? 0n, data: blob.subarray(end, end + len) });
    at = end + len;
  }
  return out;
}

/** Writes a ghost's data into the new file in the task, leaving the holes as holes. */
export function fillGhost(remote: RemoteSyscall, fd: number, extents: Extent[], size: bigint, what: string): void {
  for (const e of extents) writeAll(remote, fd, e.data, what, e.off);
  remote.sys.with(what).ftruncate(fd, size);
}
