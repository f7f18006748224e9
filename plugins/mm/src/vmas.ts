import { madvOf, lockOf } from './madvise';
import { AmberError, MAP, PROT, VmaStatus, type MapsEntry, type MmEntry, type VmaEntry } from '@amber/core';

export type { MmEntry, VmaEntry };

/** CRIU's VMA status bits, with short names. */
export const VMA = {
  REGULAR: VmaStatus.AREA_REGULAR, STACK: VmaStatus.AREA_STACK, VSYSCALL: VmaStatus.AREA_VSYSCALL,
  VDSO: VmaStatus.AREA_VDSO, HEAP: VmaStatus.AREA_HEAP, FILE_PRIVATE: VmaStatus.FILE_PRIVATE,
  FILE_SHARED: VmaStatus.FILE_SHARED, ANON_SHARED: VmaStatus.ANON_SHARED, ANON_PRIVATE: VmaStatus.ANON_PRIVATE,
  VVAR: VmaStatus.AREA_VVAR, MEMFD: VmaStatus.AREA_MEMFD, SYSVIPC: VmaStatus.AREA_SYSVIPC,
} as const;

export const SPECIAL_NAMES = new Set(['[vdso]', '[vvar]', '[vvar_vclock]', '[vsyscall]']);

export function isSpecial(v: VmaEntry): boolean {
  return (v.status & (VMA.VDSO | VMA.VVAR | VMA.VSYSCALL)) !== 0;
}

export function isFileBacked(v: VmaEntry): boolean {
  return (v.status & (VMA.FILE_PRIVATE | VMA.FILE_SHARED)) !== 0 && !v.amberObject;
}

/** A memory object (shmem.img) a mapping belongs to. */
export interface MemoryObjectRef {
  id: number;
  kind: 'anon' | 'memfd' | 'deleted';
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
export function classify(m: MapsEntry, vmFlags: string[], fileId: number, object?: MemoryObjectRef): VmaEntry {
  const shared = m.perms[3] === 's';
  let status: number = VMA.REGULAR;
  let flags: number = shared ? MAP.SHARED : MAP.PRIVATE;
  // The kernel's special mappings are anonymous private memory to CRIU, which maps a VMA entry
  // with its flags as they are (without MAP_ANONYMOUS its mmap of fd -1 fails).
  if (m.path === '[vdso]') [status, flags] = [status | VMA.VDSO | VMA.ANON_PRIVATE, flags | MAP.ANONYMOUS];
  else if (m.path === '[vvar]' || m.path === '[vvar_vclock]') [status, flags] = [status | VMA.VVAR | VMA.ANON_PRIVATE, flags | MAP.ANONYMOUS];
  else if (m.path === '[vsyscall]') [status, flags] = [VMA.VSYSCALL | VMA.ANON_PRIVATE, flags | MAP.ANONYMOUS];
  else if (object?.kind === 'anon') {
    status |= VMA.ANON_SHARED;
    flags |= MAP.ANONYMOUS;
  }
  else if (fileId || object) status |= (shared ? VMA.FILE_SHARED : VMA.FILE_PRIVATE) | (object?.kind === 'memfd' ? VMA.MEMFD : 0);
  else {
    status |= shared ? VMA.ANON_SHARED : VMA.ANON_PRIVATE;
    flags |= MAP.ANONYMOUS;
  }
  if (m.path === '[heap]') status |= VMA.HEAP;
  if (m.path === '[stack]') status |= VMA.STACK;
  if (vmFlags.includes('gd')) flags |= MAP.GROWSDOWN;
  if (vmFlags.includes('nr')) flags |= MAP.NORESERVE;
  const v: VmaEntry = {
    start: m.start, end: m.end, pgoff: fileId || object ? m.offset : 0n, shmid: BigInt(object?.id ?? fileId), prot: protOf(m.perms),
    flags, status, fd: -1n, madv: madvOf(vmFlags) | lockOf(vmFlags),
  };
  if (object) v.amberObject = object.id;
  return v;
}

/**
 * A mapping another plugin owns (a MappingKind: SysV shared memory), written as CRIU writes a SysV
 * one: shared anonymous memory with the kind's status bit, the object in shmid, no pages of its own.
 */
export function classifyOwned(m: MapsEntry, vmFlags: string[], status: number, owned: { shmid: bigint; fdflags: number }): VmaEntry {
  let flags = MAP.SHARED | MAP.ANONYMOUS;
  if (vmFlags.includes('gd')) flags |= MAP.GROWSDOWN;
  if (vmFlags.includes('nr')) flags |= MAP.NORESERVE;
  return {
    start: m.start, end: m.end, pgoff: m.offset, shmid: owned.shmid, prot: protOf(m.perms), flags,
    status: VMA.REGULAR | VMA.ANON_SHARED | status, fd: -1n, madv: madvOf(vmFlags) | lockOf(vmFlags), fdflags: owned.fdflags,
  };
}

/**
 * [vvar] and [vvar_vclock] as one entry, as CRIU stores them (it treats "vvar" as a single area
 * whose size it compares with the running kernel's).
 */
export function joinVvar(vmas: VmaEntry[]): VmaEntry[] {
  const out: VmaEntry[] = [];
  for (let i = 0; i < vmas.length; i++) {
    const v = vmas[i];
    const last = out[out.length - 1];
    if (last && v.status & VMA.VVAR && last.status & VMA.VVAR && last.end === v.start) out[out.length - 1] = { ...last, end: v.end };
    else out.push(v);
  }
  return out;
}

/**
 * Shared memory that is not one of amber's memory objects (shmem.img), even after CRIU's shared
 * anonymous memory was read as one (criu-shared.ts), is a memfd of the program's own mapped in a
 * CRIU image, which amber does not read yet. Mapping it empty would give the task different
 * memory, so the restore refuses (and undoes what it made). SysV segments belong to the plugin
 * that owns their mappings (address-space.ts refuses them when it is missing).
 */
export function refuseForeignShared(pid: number, vmas: VmaEntry[]): void {
  const foreign = vmas.find((v) => !v.amberObject && (v.status & (VMA.ANON_SHARED | VMA.MEMFD)) !== 0 && !(v.status & VMA.SYSVIPC));
  if (!foreign) return;
  throw new AmberError(
    `pid ${pid}: VMA 0x${foreign.start.toString(16)}-0x${foreign.end.toString(16)} is shared memory as CRIU stores it ` +
      `(${foreign.status & VMA.MEMFD ? `a memfd, file id ${foreign.shmid}` : `shmid ${foreign.shmid}`}), which amber cannot restore yet`,
  );
}
