/**
 * TypeScript shapes of the image messages other than core-<tid>.img (see
 * types-core.ts for those). Same conventions: 64-bit integers are bigints,
 * 32-bit ones numbers, bytes Buffers, enums numbers; repeated fields are
 * always arrays, optional fields may be undefined.
 */

export const LsmType = { NO_LSM: 0, SELINUX: 1, APPARMOR: 2 } as const;

/** The kind of a file description (fdinfo / files.img `type`). */
export const FdType = {
  UND: 0,
  REG: 1,
  PIPE: 2,
  FIFO: 3,
  INETSK: 4,
  UNIXSK: 5,
  EVENTFD: 6,
  EVENTPOLL: 7,
  INOTIFY: 8,
  SIGNALFD: 9,
  PACKETSK: 10,
  TTY: 11,
  FANOTIFY: 12,
  NETLINKSK: 13,
  NS: 14,
  TUNF: 15,
  EXT: 16,
  TIMERFD: 17,
  MEMFD: 18,
  BPFMAP: 19,
  PIDFD: 20,
  CTL_TTY: 65534,
  AUTOFS_PIPE: 65535,
} as const;

/** Bits of PagemapEntry.flags. */
export const PagemapFlag = { PARENT: 1, LAZY: 2, PRESENT: 4 } as const;

/** Bits of VmaEntry.status (the VMA_* kinds). */
export const VmaStatus = {
  AREA_NONE: 0,
  AREA_REGULAR: 1 << 0,
  AREA_STACK: 1 << 1,
  AREA_VSYSCALL: 1 << 2,
  AREA_VDSO: 1 << 3,
  AREA_HEAP: 1 << 5,
  FILE_PRIVATE: 1 << 6,
  FILE_SHARED: 1 << 7,
  ANON_SHARED: 1 << 8,
  ANON_PRIVATE: 1 << 9,
  AREA_SYSVIPC: 1 << 10,
  AREA_SOCKET: 1 << 11,
  AREA_VVAR: 1 << 12,
  AREA_AIORING: 1 << 13,
  AREA_MEMFD: 1 << 14,
  // bit 31 (1 << 31 would be negative in JS)
  UNSUPP: 0x80000000,
} as const;

/** The inventory's img_version for "images v1.1". */
export const IMG_VERSION_V1_1 = 2;

export interface TaskKobjIdsEntry {
  vmId: number;
  filesId: number;
  fsId: number;
  sighandId: number;
  pidNsId?: number;
  netNsId?: number;
  ipcNsId?: number;
  utsNsId?: number;
  mntNsId?: number;
  userNsId?: number;
  cgroupNsId?: number;
  timeNsId?: number;
}

export interface InventoryEntry {
  imgVersion: number;
  fdinfoPerId?: boolean;
  rootIds?: TaskKobjIdsEntry;
  nsPerId?: boolean;
  rootCgSet?: number;
  /** LsmType */
  lsmtype?: number;
  dumpUptime?: bigint;
  preDumpMode?: number;
  tcpClose?: boolean;
  networkLockMethod?: number;
  /** amber extension (field 1000): plugins whose resources the dump holds */
  amberPlugins?: string[];
  /** amber extension (field 1001): every image of the set, with its size and checksum */
  amberImages?: AmberImageDigest[];
}

export interface AmberImageDigest {
  /** file name in the image directory, e.g. core-4242.img */
  name: string;
  size: bigint;
  sha256: Buffer;
  /** a pages file: the hash covers sampled pages only */
  sampled?: boolean;
}

export interface PstreeEntry {
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  threads: number[];
}

export interface AioRingEntry {
  id: bigint;
  nrReq: number;
  ringLen: number;
}

export interface VmaEntry {
  start: bigint;
  end: bigint;
  pgoff: bigint;
  shmid: bigint;
  prot: number;
  flags: number;
  /** VmaStatus bits */
  status: number;
  /** id of the backing file in files.img, or -1n */
  fd: bigint;
  /** MADV_* bits (1 << MADV_x) to apply again */
  madv?: bigint;
  fdflags?: number;
  /** amber: id in shmem.img of the memory object behind this mapping */
  amberObject?: number;
}

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
  mmSavedAuxv: bigint[];
  vmas: VmaEntry[];
  dumpable?: number;
  aios: AioRingEntry[];
  thpDisabled?: boolean;
  /** amber: mlockall() flags (MCL_FUTURE | MCL_ONFAULT) */
  amberMlockall?: number;
  amberFileStamps: FileStamp[];
}

export interface PagemapHead {
  pagesId: number;
  /** amber: dirty tracking armed in the task when this (pre-)dump ended */
  amberTracking?: string;
  amberTrackerFd?: number;
  amberTrackerIno?: bigint;
}

export interface PagemapEntry {
  vaddr: bigint;
  nrPages: number;
  inParent?: boolean;
  /** PagemapFlag bits */
  flags?: number;
}

export interface FsEntry {
  cwdId: number;
  rootId: number;
  umask?: number;
}

export interface FdinfoEntry {
  id: number;
  flags: number;
  /** FdType */
  type: number;
  fd: number;
  xattrSecuritySelinux?: string;
}

export interface FownEntry {
  uid: number;
  euid: number;
  signum: number;
  pidType: number;
  pid: number;
}

export interface RegFileEntry {
  id: number;
  flags: number;
  pos: bigint;
  fown: FownEntry;
  name: string;
  mntId?: number;
  size?: bigint;
  ext?: boolean;
  mode?: number;
  buildId?: number[];
  checksum?: number;
  checksumConfig?: number;
  checksumParameter?: number;
}

export interface PipeEntry {
  id: number;
  pipeId: number;
  flags: number;
  fown: FownEntry;
  /** The tree holds only this end; a process outside it held the other one at dump time. */
  otherEndOutside?: boolean;
}

export interface FifoEntry {
  id: number;
  pipeId: number;
  regfId?: number;
}

export interface EventfdFileEntry {
  id: number;
  /** open flags | EFD_SEMAPHORE (1) */
  flags: number;
  fown: FownEntry;
  counter: bigint;
}

export interface EventpollTfdEntry {
  id: number;
  tfd: number;
  events: number;
  data: bigint;
  dev?: number;
  inode?: bigint;
  pos?: bigint;
  /** amber: an open fd of the task for the target file when `tfd` itself was closed or reused */
  srcFd?: number;
  /** amber: srcFd is an fd of this other task of the tree (the owner closed all of its own) */
  srcPid?: number;
}

export interface EventpollFileEntry {
  id: number;
  flags: number;
  fown: FownEntry;
  tfd: EventpollTfdEntry[];
}

export interface SignalfdEntry {
  id: number;
  flags: number;
  fown: FownEntry;
  sigmask: bigint;
}

export interface TimerfdEntry {
  id: number;
  flags: number;
  fown: FownEntry;
  clockid: number;
  ticks: bigint;
  settimeFlags: number;
  vsec: bigint;
  vnsec: bigint;
  isec: bigint;
  insec: bigint;
}

export interface FhEntry {
  bytes: number;
  type: number;
  handle: bigint[];
  path?: string;
  mntId?: number;
}

export interface InotifyWdEntry {
  id: number;
  iIno: bigint;
  mask: number;
  ignoredMask: number;
  sDev: number;
  wd: number;
  fHandle: FhEntry;
  /** The watched file had no name any more at dump; this fd of the task holds it. */
  openFd?: number;
}

export interface InotifyFileEntry {
  id: number;
  flags: number;
  fown: FownEntry;
  wd: InotifyWdEntry[];
}

export interface MemfdFileEntry {
  id: number;
  flags: number;
  pos: bigint;
  fown: FownEntry;
  inodeId: number;
}

export interface FanotifyInodeMarkEntry {
  iIno: bigint;
  fHandle: FhEntry;
}

export interface FanotifyMountMarkEntry {
  mntId: number;
  /** amber: the mount point, as the dumping task saw it */
  path?: string;
}

/** MarkType: INODE 1, MOUNT 2 */
export interface FanotifyMarkEntry {
  id: number;
  type: number;
  mflags: number;
  mask: number;
  ignoredMask: number;
  sDev: number;
  ie?: FanotifyInodeMarkEntry;
  me?: FanotifyMountMarkEntry;
}

export interface FanotifyFileEntry {
  id: number;
  flags: number;
  fown: FownEntry;
  faflags: number;
  evflags: number;
  mark: FanotifyMarkEntry[];
}

export interface PidfdEntry {
  id: number;
  /** inode of the pidfd (pidfs) */
  ino: bigint;
  flags: number;
  /** the pid it refers to, in the dumping task's pid namespace; -1 once that process is gone */
  nspid: number;
  fown: FownEntry;
}

export interface FileEntry {
  /** FdType */
  type: number;
  id: number;
  reg?: RegFileEntry;
  efd?: EventfdFileEntry;
  epfd?: EventpollFileEntry;
  sgfd?: SignalfdEntry;
  tfd?: TimerfdEntry;
  ify?: InotifyFileEntry;
  fifo?: FifoEntry;
  pipe?: PipeEntry;
  memfd?: MemfdFileEntry;
  ffy?: FanotifyFileEntry;
  pidfd?: PidfdEntry;
}

export interface DumpStatsEntry {
  freezingTime: number;
  frozenTime: number;
  memdumpTime: number;
  memwriteTime: number;
  pagesScanned: bigint;
  pagesSkippedParent: bigint;
  pagesWritten: bigint;
  irmapResolve?: number;
  pagesLazy: bigint;
  pagePipes?: bigint;
  pagePipeBufs?: bigint;
  shpagesScanned?: bigint;
  shpagesSkippedParent?: bigint;
  shpagesWritten?: bigint;
}

export interface RestoreStatsEntry {
  pagesCompared: bigint;
  pagesSkippedCow: bigint;
  forkingTime: number;
  restoreTime: number;
  pagesRestored?: bigint;
}

export interface StatsEntry {
  dump?: DumpStatsEntry;
  restore?: RestoreStatsEntry;
}
