// Generated from core/proto/mm.proto by `npm run protos` (scripts/protos.js): do not edit.

export interface AioRingEntry {
  id: bigint;
  nrReq: number;
  ringLen: number;
}

/**
 * One mapping. `status` holds amber's/CRIU's VMA_* kind bits (see VmaStatus
 * in TypeScript); `fd` is the id of the backing file in files.img, or -1.
 */
export interface VmaEntry {
  start: bigint;
  end: bigint;
  pgoff: bigint;
  shmid: bigint;
  prot: number;
  flags: number;
  /** VmaStatus bits */
  status: number;
  /** zigzag-encoded on the wire */
  fd: bigint;
  /** MADV_* bits (1 << MADV_x) to apply again */
  madv?: bigint;
  fdflags?: number;
  /**
   * amber: id of the memory object (shmem.img: shared anonymous memory, memfd, deleted file)
   * behind this mapping; absent for anonymous private memory and files that are still linked
   */
  amberObject?: number;
}

/** amber: what a mapped file (or the executable) looked like at dump, to refuse a changed one */
export interface FileStamp {
  fileId: number;
  size: bigint;
  mtimeNs: bigint;
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
  /** the auxiliary vector as (type, value) pairs, flattened */
  mmSavedAuxv: bigint[];
  vmas: VmaEntry[];
  dumpable?: number;
  aios: AioRingEntry[];
  thpDisabled?: boolean;
  /** amber: mlockall() flags of the task (MCL_FUTURE, MCL_ONFAULT), 0 if none */
  amberMlockall?: number;
  amberFileStamps: FileStamp[];
}
