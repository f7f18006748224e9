import { MAP, PROT, type MapsEntry } from '@amber/core';

/** CRIU's VMA status bits (vma_entry.status). */
export const VMA = {
  REGULAR: 1 << 0, STACK: 1 << 1, VSYSCALL: 1 << 2, VDSO: 1 << 3, HEAP: 1 << 5, FILE_PRIVATE: 1 << 6,
  FILE_SHARED: 1 << 7, ANON_SHARED: 1 << 8, ANON_PRIVATE: 1 << 9, SYSVIPC: 1 << 10, SOCKET: 1 << 11,
  VVAR: 1 << 12, AIORING: 1 << 13, MEMFD: 1 << 14,
} as const;

/** vma_entry of mm-<pid>.img. */
export interface VmaEntry {
  start: bigint;
  end: bigint;
  /** Byte offset into the mapped file. */
  pgoff: bigint;
  /** For file mappings: the id of the file in files.img. */
  shmid: bigint;
  prot: number;
  flags: number;
  status: number;
  fd: number;
  madv?: bigint;
  fdflags?: number;
}

export interface MmEntry {
  mmStartCode: bigint;
  mmEndCode: bigint;
  mmStartData: bigint;
  mmEndData: bigint;
  mmStartStack: bigint;
  mmStartBrk: bigint;
  mmBrk: bigint;
  mmArgStart: bigint;
  mmArgEnd: bigint;
  mmEnvStart: bigint;
  mmEnvEnd: bigint;
  exeFileId: number;
  mmSavedAuxv: bigint[];
  vmas: VmaEntry[];
  dumpable?: number;
}

export const SPECIAL_NAMES = new Set(['[vdso]', '[vvar]', '[vvar_vclock]', '[vsyscall]']);

export function isSpecial(v: VmaEntry): boolean {
  return (v.status & (VMA.VDSO | VMA.VVAR | VMA.VSYSCALL)) !== 0;
}

export function isFileBacked(v: VmaEntry): boolean {
  return (v.status & (VMA.FILE_PRIVATE | VMA.FILE_SHARED)) !== 0;
}

/** Private memory whose pages live in the image (as opposed to in a file or a shared object). */
export function hasPrivatePages(v: VmaEntry): boolean {
  return (v.status & (VMA.ANON_PRIVATE | VMA.FILE_PRIVATE)) !== 0 && !isSpecial(v);
}

export function protOf(perms: string): number {
  return (perms[0] === 'r' ? PROT.READ : 0) | (perms[1] === 'w' ? PROT.WRITE : 0) | (perms[2] === 'x' ? PROT.EXEC : 0);
}

/**
 * What a line of /proc/PID/maps is, in CRIU's terms. `fileId` names the mapped file in files.img
 * (0 for anonymous memory); `vmFlags` are the VmFlags of smaps.
 */
export function classify(m: MapsEntry, vmFlags: string[], fileId: number): VmaEntry {
  const shared = m.perms[3] === 's';
  let status = VMA.REGULAR;
  let flags = shared ? MAP.SHARED : MAP.PRIVATE;
  if (m.path === '[vdso]') status |= VMA.VDSO;
  else if (m.path === '[vvar]' || m.path === '[vvar_vclock]') status |= VMA.VVAR;
  else if (m.path === '[vsyscall]') status = VMA.VSYSCALL;
  else if (fileId) status |= shared ? VMA.FILE_SHARED : VMA.FILE_PRIVATE;
  else {
    status |= shared ? VMA.ANON_SHARED : VMA.ANON_PRIVATE;
    flags |= MAP.ANONYMOUS;
  }
  if (m.path === '[heap]') status |= VMA.HEAP;
  if (m.path === '[stack]') status |= VMA.STACK;
  if (vmFlags.includes('gd')) flags |= MAP.GROWSDOWN;
  if (vmFlags.includes('nr')) flags |= MAP.NORESERVE;
  return {
    start: m.start, end: m.end, pgoff: fileId ? m.offset : 0n, shmid: BigInt(fileId), prot: protOf(m.perms),
    flags, status, fd: -1,
  };
}
