// Every system call amber makes by number, once: its x86-64 number (asm/unistd_64.h) and its
// parameters, in order. `SYS` (constants.ts) and the typed injected calls (`remote.sys.*`) are both
// made from this table; a unit test checks every number against the installed kernel header.
//
// A parameter is written `name` (an integer: fd, flags, size, offset, pid...) or `name:kind`:
//   ptr  an address in the task (bigint; 0 for NULL): memory the caller staged or reserved
//   in   memory the kernel only reads: an address, or a Buffer that the call stages itself
//   str  a NUL-terminated string the kernel only reads: an address, or a string the call stages
// A trailing `?` makes a parameter optional (prctl's unused ones): its register is left as it was.

/** One row of the table. */
export interface SyscallSpec<N extends number = number, P extends readonly string[] = readonly string[]> {
  readonly nr: N;
  readonly params: P;
}

function sys<const N extends number, const P extends readonly string[]>(nr: N, ...params: P): SyscallSpec<N, P> {
  return { nr, params };
}

export const SYSCALLS = {
  read: sys(0, 'fd', 'buf:ptr', 'count'),
  write: sys(1, 'fd', 'buf:in', 'count'),
  open: sys(2, 'path:str', 'flags', 'mode'),
  close: sys(3, 'fd'),
  fstat: sys(5, 'fd', 'statbuf:ptr'),
  poll: sys(7, 'fds:ptr', 'nfds', 'timeout'),
  lseek: sys(8, 'fd', 'offset', 'whence'),
  mmap: sys(9, 'addr:ptr', 'length', 'prot', 'flags', 'fd', 'offset'),
  mprotect: sys(10, 'addr:ptr', 'length', 'prot'),
  munmap: sys(11, 'addr:ptr', 'length'),
  brk: sys(12, 'addr:ptr'),
  rt_sigaction: sys(13, 'sig', 'act:in', 'oldact:ptr', 'sigsetsize'),
  rt_sigprocmask: sys(14, 'how', 'set:in', 'oldset:ptr', 'sigsetsize'),
  rt_sigreturn: sys(15),
  ioctl: sys(16, 'fd', 'request', 'arg'),
  pread64: sys(17, 'fd', 'buf:ptr', 'count', 'offset'),
  pwrite64: sys(18, 'fd', 'buf:in', 'count', 'offset'),
  readv: sys(19, 'fd', 'iov:in', 'iovcnt'),
  writev: sys(20, 'fd', 'iov:in', 'iovcnt'),
  sched_yield: sys(24),
  mremap: sys(25, 'oldAddr:ptr', 'oldSize', 'newSize', 'flags', 'newAddr:ptr'),
  mincore: sys(27, 'addr:ptr', 'length', 'vec:ptr'),
  madvise: sys(28, 'addr:ptr', 'length', 'advice'),
  shmget: sys(29, 'key', 'size', 'shmflg'),
  shmat: sys(30, 'shmid', 'shmaddr:ptr', 'shmflg'),
  shmctl: sys(31, 'shmid', 'cmd', 'buf:ptr'),
  dup: sys(32, 'oldfd'),
  dup2: sys(33, 'oldfd', 'newfd'),
  pause: sys(34),
  nanosleep: sys(35, 'req:in', 'rem:ptr'),
  getitimer: sys(36, 'which', 'value:ptr'),
  setitimer: sys(38, 'which', 'value:in', 'old:ptr'),
  getpid: sys(39),
  sendfile: sys(40, 'outFd', 'inFd', 'offset:ptr', 'count'),
  socket: sys(41, 'domain', 'type', 'protocol'),
  connect: sys(42, 'fd', 'addr:in', 'addrlen'),
  sendto: sys(44, 'fd', 'buf:in', 'len', 'flags', 'destAddr:in', 'addrlen'),
  recvfrom: sys(45, 'fd', 'buf:ptr', 'len', 'flags', 'srcAddr:ptr', 'addrlen:ptr'),
  sendmsg: sys(46, 'fd', 'msg:in', 'flags'),
  recvmsg: sys(47, 'fd', 'msg:ptr', 'flags'),
  shutdown: sys(48, 'fd', 'how'),
  bind: sys(49, 'fd', 'addr:in', 'addrlen'),
  listen: sys(50, 'fd', 'backlog'),
  getsockname: sys(51, 'fd', 'addr:ptr', 'addrlen:ptr'),
  getpeername: sys(52, 'fd', 'addr:ptr', 'addrlen:ptr'),
  socketpair: sys(53, 'domain', 'type', 'protocol', 'sv:ptr'),
  setsockopt: sys(54, 'fd', 'level', 'optname', 'optval:in', 'optlen'),
  getsockopt: sys(55, 'fd', 'level', 'optname', 'optval:ptr', 'optlen:ptr'),
  clone: sys(56, 'flags', 'stack:ptr', 'parentTid:ptr', 'childTid:ptr', 'tls'),
  fork: sys(57),
  exit: sys(60, 'status'),
  wait4: sys(61, 'pid', 'status:ptr', 'options', 'rusage:ptr'),
  kill: sys(62, 'pid', 'sig'),
  semget: sys(64, 'key', 'nsems', 'semflg'),
  semop: sys(65, 'semid', 'sops:in', 'nsops'),
  semctl: sys(66, 'semid', 'semnum', 'cmd', 'arg'),
  shmdt: sys(67, 'shmaddr:ptr'),
  msgget: sys(68, 'key', 'msgflg'),
  msgsnd: sys(69, 'msqid', 'msgp:in', 'msgsz', 'msgflg'),
  msgrcv: sys(70, 'msqid', 'msgp:ptr', 'msgsz', 'msgtyp', 'msgflg'),
  msgctl: sys(71, 'msqid', 'cmd', 'buf:ptr'),
  fcntl: sys(72, 'fd', 'cmd', 'arg'),
  flock: sys(73, 'fd', 'operation'),
  ftruncate: sys(77, 'fd', 'length'),
  chdir: sys(80, 'path:str'),
  fchdir: sys(81, 'fd'),
  unlink: sys(87, 'path:str'),
  fchmod: sys(91, 'fd', 'mode'),
  fchown: sys(93, 'fd', 'owner', 'group'),
  umask: sys(95, 'mask'),
  ptrace: sys(101, 'request', 'pid', 'addr:ptr', 'data'),
  getuid: sys(102),
  setpgid: sys(109, 'pid', 'pgid'),
  getppid: sys(110),
  setsid: sys(112),
  getgroups: sys(115, 'size', 'list:ptr'),
  setgroups: sys(116, 'size', 'list:in'),
  setresuid: sys(117, 'ruid', 'euid', 'suid'),
  setresgid: sys(119, 'rgid', 'egid', 'sgid'),
  getpgid: sys(121, 'pid'),
  setfsuid: sys(122, 'fsuid'),
  setfsgid: sys(123, 'fsgid'),
  getsid: sys(124, 'pid'),
  capset: sys(126, 'header:in', 'data:in'),
  rt_sigpending: sys(127, 'set:ptr', 'sigsetsize'),
  rt_sigqueueinfo: sys(129, 'tgid', 'sig', 'info:in'),
  sigaltstack: sys(131, 'ss:in', 'oldSs:ptr'),
  mknod: sys(133, 'path:str', 'mode', 'dev'),
  personality: sys(135, 'persona'),
  statfs: sys(137, 'path:str', 'buf:ptr'),
  getpriority: sys(140, 'which', 'who'),
  setpriority: sys(141, 'which', 'who', 'prio'),
  sched_setparam: sys(142, 'pid', 'param:in'),
  sched_getparam: sys(143, 'pid', 'param:ptr'),
  sched_setscheduler: sys(144, 'pid', 'policy', 'param:in'),
  sched_getscheduler: sys(145, 'pid'),
  mlock: sys(149, 'addr:ptr', 'length'),
  mlockall: sys(151, 'flags'),
  munlockall: sys(152),
  prctl: sys(157, 'option', 'arg2?', 'arg3?', 'arg4?', 'arg5?'),
  arch_prctl: sys(158, 'code', 'addr'),
  chroot: sys(161, 'path:str'),
  gettid: sys(186),
  tkill: sys(200, 'tid', 'sig'),
  futex: sys(202, 'uaddr:ptr', 'op', 'val', 'timeout:ptr', 'uaddr2:ptr', 'val3'),
  set_tid_address: sys(218, 'tidptr:ptr'),
  restart_syscall: sys(219),
  semtimedop: sys(220, 'semid', 'sops:in', 'nsops', 'timeout:in'),
  timer_create: sys(222, 'clockid', 'sevp:in', 'timerid:ptr'),
  timer_settime: sys(223, 'timerid', 'flags', 'newValue:in', 'oldValue:ptr'),
  timer_gettime: sys(224, 'timerid', 'currValue:ptr'),
  timer_getoverrun: sys(225, 'timerid'),
  timer_delete: sys(226, 'timerid'),
  clock_nanosleep: sys(230, 'clockid', 'flags', 'request:in', 'remain:ptr'),
  exit_group: sys(231, 'status'),
  epoll_ctl: sys(233, 'epfd', 'op', 'fd', 'event:in'),
  tgkill: sys(234, 'tgid', 'tid', 'sig'),
  mq_open: sys(240, 'name:str', 'oflag', 'mode', 'attr:in'),
  mq_unlink: sys(241, 'name:str'),
  mq_timedsend: sys(242, 'mqdes', 'msg:in', 'msgLen', 'msgPrio', 'timeout:in'),
  mq_timedreceive: sys(243, 'mqdes', 'msg:ptr', 'msgLen', 'msgPrio:ptr', 'timeout:in'),
  mq_notify: sys(244, 'mqdes', 'sevp:in'),
  mq_getsetattr: sys(245, 'mqdes', 'newattr:in', 'oldattr:ptr'),
  inotify_add_watch: sys(254, 'fd', 'path:str', 'mask'),
  inotify_rm_watch: sys(255, 'fd', 'wd'),
  openat: sys(257, 'dirfd', 'path:str', 'flags', 'mode'),
  unlinkat: sys(263, 'dirfd', 'path:str', 'flags'),
  linkat: sys(265, 'olddirfd', 'oldpath:str', 'newdirfd', 'newpath:str', 'flags'),
  unshare: sys(272, 'flags'),
  set_robust_list: sys(273, 'head:ptr', 'len'),
  get_robust_list: sys(274, 'pid', 'head:ptr', 'len:ptr'),
  splice: sys(275, 'fdIn', 'offIn:ptr', 'fdOut', 'offOut:ptr', 'len', 'flags'),
  tee: sys(276, 'fdIn', 'fdOut', 'len', 'flags'),
  vmsplice: sys(278, 'fd', 'iov:in', 'nrSegs', 'flags'),
  timerfd_create: sys(283, 'clockid', 'flags'),
  fallocate: sys(285, 'fd', 'mode', 'offset', 'len'),
  timerfd_settime: sys(286, 'fd', 'flags', 'newValue:in', 'oldValue:ptr'),
  accept4: sys(288, 'fd', 'addr:ptr', 'addrlen:ptr', 'flags'),
  signalfd4: sys(289, 'fd', 'mask:in', 'sizemask', 'flags'),
  eventfd2: sys(290, 'initval', 'flags'),
  epoll_create1: sys(291, 'flags'),
  dup3: sys(292, 'oldfd', 'newfd', 'flags'),
  pipe2: sys(293, 'pipefd:ptr', 'flags'),
  inotify_init1: sys(294, 'flags'),
  preadv: sys(295, 'fd', 'iov:in', 'iovcnt', 'posL', 'posH'),
  pwritev: sys(296, 'fd', 'iov:in', 'iovcnt', 'posL', 'posH'),
  rt_tgsigqueueinfo: sys(297, 'tgid', 'tid', 'sig', 'info:in'),
  fanotify_init: sys(300, 'flags', 'eventFlags'),
  fanotify_mark: sys(301, 'fd', 'flags', 'mask', 'dirfd', 'path:str'),
  prlimit64: sys(302, 'pid', 'resource', 'newLimit:in', 'oldLimit:ptr'),
  open_by_handle_at: sys(304, 'mountFd', 'handle:in', 'flags'),
  setns: sys(308, 'fd', 'nstype'),
  process_vm_readv: sys(310, 'pid', 'localIov:in', 'liovcnt', 'remoteIov:in', 'riovcnt', 'flags'),
  process_vm_writev: sys(311, 'pid', 'localIov:in', 'liovcnt', 'remoteIov:in', 'riovcnt', 'flags'),
  kcmp: sys(312, 'pid1', 'pid2', 'type', 'idx1', 'idx2'),
  seccomp: sys(317, 'operation', 'flags', 'args:in'),
  memfd_create: sys(319, 'name:str', 'flags'),
  userfaultfd: sys(323, 'flags'),
  mlock2: sys(325, 'addr:ptr', 'length', 'flags'),
  copy_file_range: sys(326, 'fdIn', 'offIn:ptr', 'fdOut', 'offOut:ptr', 'len', 'flags'),
  rseq: sys(334, 'rseq:ptr', 'rseqLen', 'flags', 'sig'),
  pidfd_send_signal: sys(424, 'pidfd', 'sig', 'info:in', 'flags'),
  io_uring_setup: sys(425, 'entries', 'params:ptr'),
  pidfd_open: sys(434, 'pid', 'flags'),
  clone3: sys(435, 'args:in', 'size'),
  close_range: sys(436, 'first', 'last', 'flags'),
  pidfd_getfd: sys(438, 'pidfd', 'targetfd', 'flags'),
} as const;

export type SyscallName = keyof typeof SYSCALLS;

/** An address in the task; 0 is NULL. */
export type Address = bigint | 0;

/** What an argument of a parameter so written may be. */
export type ArgOf<P> = P extends `${infer Q}?` ? KindArg<Q> : KindArg<P>;

type KindArg<P> =
  P extends `${string}:ptr` ? Address
  : P extends `${string}:in` ? Address | Buffer
  : P extends `${string}:str` ? Address | string
  : number | bigint;

type ArgsOfParams<P extends readonly string[]> =
  P extends readonly [infer H extends string, ...infer T extends readonly string[]]
    ? H extends `${string}?` ? [ArgOf<H>?, ...ArgsOfParams<T>] : [ArgOf<H>, ...ArgsOfParams<T>]
    : [];

/** The argument tuple of a call. */
export type ArgsOf<N extends SyscallName> = ArgsOfParams<(typeof SYSCALLS)[N]['params']>;

/** Any argument of any call. */
export type SyscallArg = number | bigint | Buffer | string;

/** The syscall numbers, by name. */
export const SYSCALL_NUMBERS = Object.fromEntries(Object.entries(SYSCALLS).map(([name, s]) => [name, s.nr])) as {
  readonly [N in SyscallName]: (typeof SYSCALLS)[N]['nr'];
};
