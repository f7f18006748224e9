import { readFileSync } from 'node:fs';
import { addressOf, syscall, syscallRaw } from './libc';
import { KernelError } from './errors';
import { SYS } from './constants';

/** SysV IPC flags and commands common to shm, msg and sem (linux/ipc.h). */
export const IPC = {
  PRIVATE: 0, CREAT: 0o1000, EXCL: 0o2000, NOWAIT: 0o4000,
  RMID: 0, SET: 1, STAT: 2, INFO: 3,
} as const;

/** shmget/shmat flags, shmctl commands and the mode bits the kernel keeps in shm_perm.mode (linux/shm.h). */
export const SHM = {
  RDONLY: 0o10000, RND: 0o20000, REMAP: 0o40000, EXEC: 0o100000, HUGETLB: 0o4000,
  LOCK: 11, UNLOCK: 12, STAT: 13, INFO: 14, STAT_ANY: 15,
  /** shm_perm.mode: marked removed (IPC_RMID), destroyed at the last detach */
  DEST: 0o1000,
  /** shm_perm.mode: SHM_LOCK'ed */
  LOCKED: 0o2000,
} as const;

/** struct shmid64_ds on x86-64 (what shmctl(IPC_STAT/IPC_SET) reads and writes). */
export const SHMID_DS_SIZE = 112;

export interface ShmidDs {
  key: number;
  uid: number;
  gid: number;
  cuid: number;
  cgid: number;
  /** permission bits and SHM_DEST / SHM_LOCKED */
  mode: number;
  segsz: bigint;
  atime: bigint;
  dtime: bigint;
  ctime: bigint;
  cpid: number;
  lpid: number;
  nattch: bigint;
}

export function parseShmidDs(b: Buffer): ShmidDs {
  return {
    key: b.readInt32LE(0), uid: b.readUInt32LE(4), gid: b.readUInt32LE(8), cuid: b.readUInt32LE(12), cgid: b.readUInt32LE(16),
    mode: b.readUInt32LE(20), segsz: b.readBigUInt64LE(48), atime: b.readBigInt64LE(56), dtime: b.readBigInt64LE(64),
    ctime: b.readBigInt64LE(72), cpid: b.readInt32LE(80), lpid: b.readInt32LE(84), nattch: b.readBigUInt64LE(88),
  };
}

/** The buffer IPC_SET reads: only uid, gid and the permission bits of mode count. */
export function shmidDsForSet(uid: number, gid: number, mode: number): Buffer {
  const b = Buffer.alloc(SHMID_DS_SIZE);
  b.writeUInt32LE(uid, 4);
  b.writeUInt32LE(gid, 8);
  b.writeUInt32LE(mode & 0o777, 20);
  return b;
}

/** One line of /proc/sysvipc/shm: the segments of the reader's IPC namespace. */
export interface SysvShmLine {
  key: number;
  id: number;
  mode: number;
  size: bigint;
  cpid: number;
  lpid: number;
  nattch: number;
  uid: number;
  gid: number;
  cuid: number;
  cgid: number;
  /** bytes of the segment swapped out (0 if the kernel does not say) */
  swap: bigint;
}

/** The rows of a /proc/sysvipc/{shm,msg,sem} text, by column name as its header line names them. */
export function parseSysvipcTable(text: string): Record<string, string>[] {
  const lines = text.split('\n').filter((l) => l.trim());
  const head = lines.shift()?.trim().split(/\s+/) ?? [];
  return lines.map((l) => {
    const cols = l.trim().split(/\s+/);
    return Object.fromEntries(head.map((h, i) => [h, cols[i]]));
  });
}

/** Parses /proc/sysvipc/shm text (recorded text in unit tests). */
export function parseSysvShm(text: string): SysvShmLine[] {
  const rows = parseSysvipcTable(text);
  const head = text.trimStart().split('\n', 1)[0].trim().split(/\s+/);
  for (const name of ['key', 'shmid', 'perms', 'size', 'cpid', 'lpid', 'nattch', 'uid', 'gid', 'cuid', 'cgid']) {
    if (!head.includes(name)) throw new Error(`/proc/sysvipc/shm has no column ${name}`);
  }
  return rows.map((r) => ({
    key: Number(r.key) | 0, id: Number(r.shmid), mode: parseInt(r.perms, 8), size: BigInt(r.size), cpid: Number(r.cpid),
    lpid: Number(r.lpid), nattch: Number(r.nattch), uid: Number(r.uid), gid: Number(r.gid), cuid: Number(r.cuid), cgid: Number(r.cgid),
    swap: r.swap === undefined ? 0n : BigInt(r.swap),
  }));
}

/** The SysV shm segments of amber's own IPC namespace. */
export function listShmSegments(): SysvShmLine[] {
  return parseSysvShm(readFileSync('/proc/sysvipc/shm', 'utf8'));
}

// The calls amber makes on segments of its own IPC namespace.

export function shmStat(id: number): ShmidDs {
  const buf = Buffer.alloc(SHMID_DS_SIZE);
  syscall('shmctl(IPC_STAT)', SYS.shmctl, [id, IPC.STAT, addressOf(buf)], { detail: `shm id ${id}` });
  return parseShmidDs(buf);
}

/** IPC_STAT, or undefined when there is no segment of that id (EINVAL, EIDRM). */
export function shmStatIfExists(id: number): ShmidDs | undefined {
  const buf = Buffer.alloc(SHMID_DS_SIZE);
  const r = syscallRaw(SYS.shmctl, [id, IPC.STAT, addressOf(buf)]);
  if (r === -22 || r === -43) return undefined;
  if (r < 0) throw new KernelError('shmctl(IPC_STAT)', -r, undefined, `shm id ${id}`);
  return parseShmidDs(buf);
}

export function shmRemove(id: number): void {
  syscall('shmctl(IPC_RMID)', SYS.shmctl, [id, IPC.RMID, 0], { detail: `shm id ${id}` });
}

/** Attaches a segment into amber at an address the kernel picks. */
export function shmAttach(id: number, flags: number): bigint {
  const r = syscallRaw(SYS.shmat, [id, 0, flags]);
  if (r < 0 && r > -4096) throw new KernelError('shmat', -r, undefined, `shm id ${id}`);
  return BigInt(r);
}

export function shmDetach(addr: bigint): void {
  syscall('shmdt', SYS.shmdt, [addr], { detail: `0x${addr.toString(16)}` });
}

/** mincore() over amber's own mapping: one byte per page, bit 0 = resident. */
export function residentPages(addr: bigint, length: bigint): Buffer {
  const vec = Buffer.alloc(Number((length + 4095n) / 4096n));
  syscall('mincore', SYS.mincore, [addr, length, addressOf(vec)], { detail: `0x${addr.toString(16)}` });
  return vec;
}

/** write(2) of amber's own memory at addr into fd; returns bytes written. */
export function writeFromAddress(fd: number, addr: bigint, length: number): number {
  return syscall('write', SYS.write, [fd, addr, length]);
}
