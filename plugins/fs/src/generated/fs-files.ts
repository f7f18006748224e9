// Generated from plugins/fs/proto/fs-files.proto by `npm run protos` (scripts/protos.js): do not edit.
import type { FownEntry } from '@amber/core';

/** Anonymous pipe end; both ends of one pipe share pipe_id (the pipe's inode). */
export interface PipeEntry {
  id: number;
  pipeId: number;
  flags: number;
  fown: FownEntry;
  /** amber: the tree holds only this end; a process outside it held the other one at dump time */
  otherEndOutside?: boolean;
}

/** FIFO end: the path is the REG entry regf_id, the data is keyed by pipe_id. */
export interface FifoEntry {
  id: number;
  pipeId: number;
  regfId?: number;
}

export interface EventfdFileEntry {
  id: number;
  /** open flags, plus EFD_SEMAPHORE (1) */
  flags: number;
  fown: FownEntry;
  counter: bigint;
}

export interface EventpollTfdEntry {
  id: number;
  /** the target's fd number in the owning task */
  tfd: number;
  events: number;
  data: bigint;
  dev?: number;
  inode?: bigint;
  pos?: bigint;
  /** amber: another open fd of the task for the target file, when tfd was closed or reused */
  srcFd?: number;
  /** amber: src_fd is an fd of this other task of the tree (the owner has none left) */
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
  /** remaining time (it_value) and period (it_interval) */
  vsec: bigint;
  vnsec: bigint;
  isec: bigint;
  insec: bigint;
}

/** A file handle as name_to_handle_at gives it; amber also records the path. */
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
  /** amber: the watched file had no name any more; this fd of the task holds it */
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

export const MarkType = {
  INODE: 1,
  MOUNT: 2,
} as const;

export interface FanotifyInodeMarkEntry {
  iIno: bigint;
  fHandle: FhEntry;
}

export interface FanotifyMountMarkEntry {
  mntId: number;
  /** amber: the mount point as the dumping task saw it */
  path?: string;
}

export interface FanotifyMarkEntry {
  id: number;
  /** MarkType */
  type: number;
  mflags: number;
  mask: number;
  ignoredMask: number;
  sDev: number;
  ie?: FanotifyInodeMarkEntry;
  me?: FanotifyMountMarkEntry;
}

/** fanotify group: fanotify_init flags (faflags) and event_f_flags (evflags), then its marks. */
export interface FanotifyFileEntry {
  id: number;
  flags: number;
  fown: FownEntry;
  faflags: number;
  evflags: number;
  mark: FanotifyMarkEntry[];
}

/** A pidfd: the process it refers to (nspid, -1 once it is gone) and the pidfs inode. */
export interface PidfdEntry {
  id: number;
  ino: bigint;
  flags: number;
  nspid: number;
  fown: FownEntry;
}
