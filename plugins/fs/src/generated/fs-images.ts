// Generated from plugins/fs/proto/fs-images.proto by `npm run protos` (scripts/protos.js): do not edit.

/** pipes-data.img / fifo-data.img: followed by `bytes` bytes of pipe contents. */
export interface PipeDataEntry {
  pipeId: number;
  bytes: number;
  /** the pipe's capacity (F_GETPIPE_SZ) */
  size?: number;
}

export interface Timeval {
  tvSec: bigint;
  tvUsec: bigint;
}

/** ghost-file-<id>.img: one entry, then the file's `size` bytes. */
export interface GhostFileEntry {
  uid: number;
  gid: number;
  mode: number;
  dev?: number;
  ino?: bigint;
  rdev?: number;
  atim?: Timeval;
  mtim?: Timeval;
  chunks?: boolean;
  size?: bigint;
  /** amber: with chunks, the length of the chunk stream that follows (CRIU reads it to the end) */
  chunksBytes?: bigint;
}

/** memfd.img: one entry per memfd inode; contents in pagemap-shmem-<shmid>.img. */
export interface MemfdInodeEntry {
  name: string;
  uid: number;
  gid: number;
  size: bigint;
  shmid: number;
  seals: number;
  inodeId: bigint;
}

/** file-locks.img */
export interface FileLockEntry {
  /** FL_POSIX 1, FL_FLOCK 2, FL_OFDLCK 1024 */
  flag: number;
  /** F_RDLCK 0, F_WRLCK 1 */
  type: number;
  pid: number;
  fd: number;
  start: bigint;
  /** 0: to the end of the file */
  len: bigint;
}

/** remap-fpath.img: description orig_id is opened through remap_id (a ghost file's id). */
export const RemapType = {
  LINKED: 0,
  GHOST: 1,
  PROCFS: 2,
} as const;

export interface RemapFilePathEntry {
  origId: number;
  remapId: number;
  /** RemapType */
  remapType?: number;
}
