// Generated from core/proto/core-x86.proto by `npm run protos` (scripts/protos.js): do not edit.

export const UserX86RegsMode = {
  NATIVE: 1,
  COMPAT: 2,
} as const;

/**
 * The 27 registers of struct user_regs_struct, in the kernel's order, then
 * the mode. 32-bit (compat) tasks reuse the same message.
 */
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
  /** UserX86RegsMode */
  mode?: number;
}

/** Extended state components after the legacy area (only ymmh is filled). */
export interface UserX86XsaveEntry {
  xstateBv: bigint;
  /** upper halves of ymm0..15, 64 words */
  ymmhSpace: number[];
  bndregState: bigint[];
  bndcsrState: bigint[];
  opmaskReg: bigint[];
  zmmUpper: bigint[];
  hi16Zmm: bigint[];
  pkru: number[];
}

/**
 * The legacy FXSAVE area, field by field. The 16-bit words of the hardware
 * layout are widened to uint32 here.
 */
export interface UserX86FpregsEntry {
  cwd: number;
  swd: number;
  twd: number;
  fop: number;
  rip: bigint;
  rdp: bigint;
  mxcsr: number;
  mxcsrMask: number;
  /** st0..st7, 16 bytes each: 32 words */
  stSpace: number[];
  /** xmm0..xmm15: 64 words */
  xmmSpace: number[];
  padding: number[];
  /** number 12 is not used */
  xsave?: UserX86XsaveEntry;
}

/**
 * struct user_desc, as for set_thread_area(2). Note the two flags whose
 * wire default is true.
 */
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
  /**
   * amber extension, unknown to CRIU (its decoders skip it): the raw
   * PTRACE_GETREGSET NT_X86_XSTATE buffer, restored as is with SETREGSET.
   */
  xsaveRaw?: Buffer;
  /**
   * amber extension: the -ERESTART* code rax held when the thread was dumped inside a syscall.
   * gpregs hold what CRIU's restore wants instead (rax = orig_rax and rip on the syscall to run it
   * again, or -EINTR for a restart_syscall kind); amber rebuilds the kernel's restart from this.
   */
  amberRestartAx?: bigint;
}
