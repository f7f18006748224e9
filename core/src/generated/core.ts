// Generated from core/proto/core.proto by `npm run protos` (scripts/protos.js): do not edit.
import type { ThreadInfoX86 } from './core-x86';
import type { TaskKobjIdsEntry } from './ids';

export const SeccompMode = {
  disabled: 0,
  strict: 1,
  filter: 2,
} as const;

export interface ItimerEntry {
  isec: bigint;
  iusec: bigint;
  vsec: bigint;
  vusec: bigint;
}

export interface PosixTimerEntry {
  itId: number;
  clockId: number;
  siSigno: number;
  itSigevNotify: number;
  sivalPtr: bigint;
  overrun: number;
  isec: bigint;
  insec: bigint;
  vsec: bigint;
  vnsec: bigint;
  notifyThreadId?: number;
}

export interface TaskTimersEntry {
  real: ItimerEntry;
  virt: ItimerEntry;
  prof: ItimerEntry;
  posix: PosixTimerEntry[];
}

export interface RlimitEntry {
  cur: bigint;
  max: bigint;
}

/** All RLIMIT_* in resource-number order. */
export interface TaskRlimitsEntry {
  rlimits: RlimitEntry[];
}

/** A raw siginfo_t (128 bytes) of a pending signal. */
export interface SiginfoEntry {
  siginfo: Buffer;
}

export interface SignalQueueEntry {
  signals: SiginfoEntry[];
}

/** One kernel sigaction (struct kernel_sigaction layout, not libc's). */
export interface SaEntry {
  sigaction: bigint;
  flags: bigint;
  restorer: bigint;
  mask: bigint;
  compatSigaction?: boolean;
  maskExtended?: bigint;
}

/** Capability sets are arrays of 32-bit words (low word first). */
export interface CredsEntry {
  uid: number;
  gid: number;
  euid: number;
  egid: number;
  suid: number;
  sgid: number;
  fsuid: number;
  fsgid: number;
  capInh: number[];
  capPrm: number[];
  capEff: number[];
  capBnd: number[];
  secbits: number;
  groups: number[];
  lsmProfile?: string;
  lsmSockcreate?: string;
  apparmorData?: Buffer;
  /** amber's extension: the ambient capability set, like the others as two 32-bit words. */
  amberCapAmb: number[];
}

export interface RseqEntry {
  rseqAbiPointer: bigint;
  rseqAbiSize: number;
  signature: number;
  rseqCsPointer?: bigint;
}

export interface ThreadSasEntry {
  ssSp: bigint;
  ssSize: bigint;
  ssFlags: number;
}

/** Per-process state; meaningful in the thread-group leader's core image. */
export interface TaskCoreEntry {
  /** TASK_ALIVE = 1, TASK_DEAD = 2, TASK_STOPPED = 3, ... */
  taskState: number;
  exitCode: number;
  personality: number;
  flags: number;
  blkSigset: bigint;
  comm: string;
  timers?: TaskTimersEntry;
  rlimits?: TaskRlimitsEntry;
  cgSet?: number;
  signalsS?: SignalQueueEntry;
  /** SeccompMode */
  oldSeccompMode?: number;
  oldSeccompFilter?: number;
  loginuid?: number;
  oomScoreAdj?: number;
  /** index i holds signal i + 1 */
  sigactions: SaEntry[];
  /** numbers 16, 17 and 19 are not used */
  childSubreaper?: boolean;
  blkSigsetExtended?: bigint;
}

/** Per-thread state. */
export interface ThreadCoreEntry {
  /** robust futex list head and its length */
  futexRla: bigint;
  futexRlaLen: number;
  schedNice?: number;
  schedPolicy?: number;
  schedPrio?: number;
  blkSigset?: bigint;
  sas?: ThreadSasEntry;
  pdeathSig?: number;
  signalsP?: SignalQueueEntry;
  creds?: CredsEntry;
  /** SeccompMode */
  seccompMode?: number;
  seccompFilter?: number;
  comm?: string;
  blkSigsetExtended?: bigint;
  rseqEntry?: RseqEntry;
  /** amber's extension: PR_SET_NO_NEW_PRIVS was set on the thread. */
  amberNoNewPrivs?: boolean;
}

export interface CoreEntry {
  /** CoreEntryMarch */
  mtype: number;
  /** x86-64 only; other architectures use numbers 6 and 8..11 */
  threadInfo?: ThreadInfoX86;
  tc?: TaskCoreEntry;
  ids?: TaskKobjIdsEntry;
  threadCore?: ThreadCoreEntry;
}

export const CoreEntryMarch = {
  UNKNOWN: 0,
  X86_64: 1,
  ARM: 2,
  AARCH64: 3,
  PPC64: 4,
  S390: 5,
  MIPS: 6,
} as const;
