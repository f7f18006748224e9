/**
 * TypeScript shapes of the messages in core-<tid>.img (see proto/core.proto
 * and proto/core-x86.proto). Every 64-bit integer is a bigint, 32-bit ones
 * are numbers, bytes are Buffers, enums are numbers. Repeated fields are
 * always arrays (empty when absent); optional fields may be undefined.
 */
import type { TaskKobjIdsEntry } from './types';

export const CoreMarch = {
  UNKNOWN: 0,
  X86_64: 1,
  ARM: 2,
  AARCH64: 3,
  PPC64: 4,
  S390: 5,
  MIPS: 6,
} as const;

export const UserX86RegsMode = { NATIVE: 1, COMPAT: 2 } as const;

export const SeccompMode = { DISABLED: 0, STRICT: 1, FILTER: 2 } as const;

/** task_state values of TaskCoreEntry. */
export const TaskState = {
  ALIVE: 1,
  DEAD: 2,
  STOPPED: 3,
  ZOMBIE: 6,
} as const;

export interface UserX86RegsEntry {
  r15: bigint;
  r14: bigint;
  r13: bigint;
  r12: bigint;
  bp: bigint;
  bx: bigint;
  r11: bigint;
  r10: bigint;
  r9: bigint;
  r8: bigint;
  ax: bigint;
  cx: bigint;
  dx: bigint;
  si: bigint;
  di: bigint;
  origAx: bigint;
  ip: bigint;
  cs: bigint;
  flags: bigint;
  sp: bigint;
  ss: bigint;
  fsBase: bigint;
  gsBase: bigint;
  ds: bigint;
  es: bigint;
  fs: bigint;
  gs: bigint;
  /** UserX86RegsMode; absent means NATIVE */
  mode?: number;
}

export interface UserX86XsaveEntry {
  xstateBv: bigint;
  ymmhSpace: number[];
  bndregState: bigint[];
  bndcsrState: bigint[];
  opmaskReg: bigint[];
  zmmUpper: bigint[];
  hi16Zmm: bigint[];
  pkru: number[];
}

export interface UserX86FpregsEntry {
  cwd: number;
  swd: number;
  twd: number;
  fop: number;
  rip: bigint;
  rdp: bigint;
  mxcsr: number;
  mxcsrMask: number;
  /** 32 words */
  stSpace: number[];
  /** 64 words */
  xmmSpace: number[];
  padding: number[];
  xsave?: UserX86XsaveEntry;
}

export interface UserDescT {
  entryNumber: number;
  baseAddr: number;
  limit: number;
  seg32bit: boolean;
  contentsH: boolean;
  contentsL: boolean;
  readExecOnly: boolean;
  limitInPages: boolean;
  segNotPresent: boolean;
  usable: boolean;
}

export interface ThreadInfoX86 {
  clearTidAddr: bigint;
  gpregs: UserX86RegsEntry;
  fpregs: UserX86FpregsEntry;
  tls: UserDescT[];
  /** amber extension (field 1000): the raw NT_X86_XSTATE buffer */
  xsaveRaw?: Buffer;
}

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

export interface TaskRlimitsEntry {
  rlimits: RlimitEntry[];
}

export interface SiginfoEntry {
  siginfo: Buffer;
}

export interface SignalQueueEntry {
  signals: SiginfoEntry[];
}

export interface SaEntry {
  sigaction: bigint;
  flags: bigint;
  restorer: bigint;
  mask: bigint;
  compatSigaction?: boolean;
  maskExtended?: bigint;
}

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
  /** amber extension (field 1000) */
  amberCapAmb?: number[];
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

export interface TaskCoreEntry {
  /** TaskState */
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
  /** index i is signal i + 1 */
  sigactions: SaEntry[];
  childSubreaper?: boolean;
  blkSigsetExtended?: bigint;
}

export interface ThreadCoreEntry {
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
  /** amber extension (field 1000) */
  amberNoNewPrivs?: boolean;
}

export interface SeccompFilter {
  filter: Buffer;
  prev?: number;
  flags?: number;
}

export interface SeccompEntry {
  seccompFilters: SeccompFilter[];
}

export interface CoreEntry {
  /** CoreMarch */
  mtype: number;
  threadInfo?: ThreadInfoX86;
  tc?: TaskCoreEntry;
  ids?: TaskKobjIdsEntry;
  threadCore?: ThreadCoreEntry;
}
