// Numbers from the x86-64 kernel ABI (asm/unistd_64.h, linux/ptrace.h, linux/elf.h, ...).
import { SYSCALL_NUMBERS } from './syscall-table';

/** Syscall numbers by name, from the one table of them (syscall-table.ts). */
export const SYS = SYSCALL_NUMBERS;

/** fcntl(2) commands. */
export const F = {
  DUPFD: 0, GETFD: 1, SETFD: 2, GETFL: 3, SETFL: 4, SETLK: 6, DUPFD_CLOEXEC: 1030,
  SETPIPE_SZ: 1031, GETPIPE_SZ: 1032, ADD_SEALS: 1033, GET_SEALS: 1034,
  SETSIG: 10, GETSIG: 11, SETOWN_EX: 15, GETOWN_EX: 16, OFD_GETLK: 36, OFD_SETLK: 37,
} as const;
export const SPLICE_F_MOVE = 1;
export const SPLICE_F_NONBLOCK = 2;

export const PTRACE = {
  PEEKDATA: 2, POKEDATA: 5, CONT: 7, KILL: 8, DETACH: 17, SYSCALL: 24,
  GETREGS: 12, SETREGS: 13, SETOPTIONS: 0x4200, GETEVENTMSG: 0x4201, GETSIGINFO: 0x4202,
  GETREGSET: 0x4204, SETREGSET: 0x4205, SEIZE: 0x4206, INTERRUPT: 0x4207, LISTEN: 0x4208,
  PEEKSIGINFO: 0x4209, GETSIGMASK: 0x420a, SETSIGMASK: 0x420b, SECCOMP_GET_FILTER: 0x420c,
  SECCOMP_GET_METADATA: 0x420d, GET_RSEQ_CONFIGURATION: 0x420f,
} as const;

export const PTRACE_O = {
  TRACESYSGOOD: 1, TRACEFORK: 2, TRACEVFORK: 4, TRACECLONE: 8, TRACEEXEC: 0x10,
  EXITKILL: 0x100000, SUSPEND_SECCOMP: 0x200000,
} as const;

export const PTRACE_EVENT = { FORK: 1, VFORK: 2, CLONE: 3, EXEC: 4, EXIT: 6, STOP: 128 } as const;

export const NT_X86_XSTATE = 0x202;
export const NT_PRSTATUS = 1;

export const WALL = 0x40000000;
export const WNOHANG = 1;

export const SIG = {
  HUP: 1, INT: 2, QUIT: 3, ILL: 4, TRAP: 5, ABRT: 6, BUS: 7, FPE: 8, KILL: 9, USR1: 10, SEGV: 11,
  USR2: 12, PIPE: 13, ALRM: 14, TERM: 15, CHLD: 17, CONT: 18, STOP: 19, TSTP: 20, TTIN: 21, TTOU: 22, URG: 23, WINCH: 28,
} as const;
export const NSIG = 64;

export const PROT = { NONE: 0, READ: 1, WRITE: 2, EXEC: 4 } as const;
export const MAP = {
  SHARED: 0x01, PRIVATE: 0x02, FIXED: 0x10, ANONYMOUS: 0x20, GROWSDOWN: 0x100, NORESERVE: 0x4000, POPULATE: 0x8000,
  FIXED_NOREPLACE: 0x100000,
} as const;
export const MREMAP = { MAYMOVE: 1, FIXED: 2, DONTUNMAP: 4 } as const;

export const O = {
  RDONLY: 0, WRONLY: 1, RDWR: 2, ACCMODE: 3, CREAT: 0o100, EXCL: 0o200, NOCTTY: 0o400,
  TRUNC: 0o1000, APPEND: 0o2000, NONBLOCK: 0o4000, DIRECTORY: 0o200000, NOFOLLOW: 0o400000,
  CLOEXEC: 0o2000000, PATH: 0o10000000, LARGEFILE: 0o100000,
  /** O_TMPFILE includes O_DIRECTORY: an unnamed file in the directory opened. */
  TMPFILE: 0o20200000,
} as const;

export const PR = {
  SET_PDEATHSIG: 1, GET_PDEATHSIG: 2, GET_DUMPABLE: 3, SET_DUMPABLE: 4, SET_NAME: 15, GET_NAME: 16,
  SET_MM: 35, SET_CHILD_SUBREAPER: 36, GET_CHILD_SUBREAPER: 37, SET_NO_NEW_PRIVS: 38, GET_NO_NEW_PRIVS: 39,
  GET_TID_ADDRESS: 40, SET_SECCOMP: 22, SET_KEEPCAPS: 8, CAPBSET_DROP: 24, GET_SECUREBITS: 27,
  SET_SECUREBITS: 28, CAP_AMBIENT: 47,
} as const;
export const PR_SET_MM_MAP = 14;
export const PR_SET_MM_MAP_SIZE = 15;

export const KCMP = { FILE: 0, VM: 1, FILES: 2, FS: 3, SIGHAND: 4, IO: 5, SYSVSEM: 6, EPOLL_TFD: 7 } as const;

export const CLONE = {
  VM: 0x100, FS: 0x200, FILES: 0x400, SIGHAND: 0x800, PIDFD: 0x1000, PARENT: 0x8000,
  THREAD: 0x10000, SYSVSEM: 0x40000, SETTLS: 0x80000, PARENT_SETTID: 0x100000,
  CHILD_CLEARTID: 0x200000, CHILD_SETTID: 0x1000000,
} as const;

export const RSEQ_FLAG_UNREGISTER = 1;
/** ioctl: bytes queued in a pipe (any end of it). */
export const FIONREAD = 0x541b;
export const SEEK_SET = 0;
export const SEEK_CUR = 1;
export const SEEK_DATA = 3;
export const SEEK_HOLE = 4;

export const MADV = {
  RANDOM: 1, SEQUENTIAL: 2, DONTNEED: 4, DONTFORK: 10, MERGEABLE: 12, HUGEPAGE: 14, NOHUGEPAGE: 15, DONTDUMP: 16,
  WIPEONFORK: 18, POPULATE_WRITE: 23,
} as const;
export const MCL = { CURRENT: 1, FUTURE: 2, ONFAULT: 4 } as const;
export const MLOCK_ONFAULT = 1;
export const F_SEALS = { ADD: 1033, GET: 1034 } as const;
export const MFD = { CLOEXEC: 1, ALLOW_SEALING: 2 } as const;

/**
 * /proc/PID/pagemap: one u64 per page; these are bits of its high 32-bit word (63 present, 62
 * swapped, 61 a file page or shared anonymous; the PFN's top 23 bits below them).
 */
export const PAGEMAP_HIGH = { PRESENT: 0x80000000, SWAPPED: 0x40000000, FILE_OR_SHARED: 0x20000000, PFN_BITS: 0x7fffff } as const;
/** ioctl on /proc/PID/pagemap (Linux 6.7): _IOWR('f', 16, struct pm_scan_arg), and its categories. */
export const PAGEMAP_SCAN = 0xc0606610;
export const PM_SCAN_ARG_SIZE = 96;
export const PAGE_IS = {
  WPALLOWED: 1 << 0, WRITTEN: 1 << 1, FILE: 1 << 2, PRESENT: 1 << 3, SWAPPED: 1 << 4, PFNZERO: 1 << 5,
  HUGE: 1 << 6, SOFT_DIRTY: 1 << 7,
} as const;
/** pm_scan_arg.flags: write-protect what matched (needs uffd-wp async), fail on VMAs without it. */
export const PM_SCAN = { WP_MATCHING: 1 << 0, CHECK_WPASYNC: 1 << 1 } as const;

/**
 * userfaultfd(2) and its ioctls (linux/userfaultfd.h; the numbers of Linux >= 6.7, whose
 * installed header may be older than the kernel). Sizes: uffdio_api 24, uffdio_register 32,
 * uffdio_range 16, uffdio_writeprotect 24 bytes.
 */
export const UFFD = {
  API: 0xaa,
  /** userfaultfd() flag: only user-mode faults; allowed without CAP_SYS_PTRACE. */
  USER_MODE_ONLY: 1,
  FEATURE_WP_UNPOPULATED: 1 << 13,
  FEATURE_WP_ASYNC: 1 << 15,
  REGISTER_MODE_WP: 2,
  WRITEPROTECT_MODE_WP: 1,
  IOC_API: 0xc018aa3f,
  IOC_REGISTER: 0xc020aa00,
  IOC_UNREGISTER: 0x8010aa01,
  IOC_COPY: 0xc028aa03,
  REGISTER_MODE_MISSING: 1,
  IOC_WRITEPROTECT: 0xc018aa06,
} as const;
/** struct kernel_sigaction on x86-64: handler, flags, restorer, mask. */
export const KSIGACTION_SIZE = 32;
export const PAGE_SIZE = 4096;
export const IOV_MAX = 1024;

/** Kernel-internal return values that mean "this syscall was interrupted; restart it". */
export const ERESTART = { SYS: 512, NOINTR: 513, NOHAND: 514, RESTARTBLOCK: 516 } as const;

/** *at(2) directory fd and flags. */
export const AT = { FDCWD: -100, SYMLINK_FOLLOW: 0x400, EMPTY_PATH: 0x1000 } as const;

/** struct kernel_sigaction sa_flags bits. */
export const SA = { SIGINFO: 4, ONSTACK: 0x08000000, RESTART: 0x10000000, NODEFER: 0x40000000, RESTORER: 0x04000000 } as const;

export const CLOCK_MONOTONIC = 1;
