import { addressOf, syscall, syscallRaw, type Arg } from './libc';
import { CLOCK_MONOTONIC, MAP, PROT, SYS, WALL } from './constants';
import { KernelError } from './errors';
import { readI32, readU64, writeU64 } from './bytes';

// Typed wrappers for the calls amber makes from its own process.

export function ptrace(request: number, pid: number, addr: Arg, data: Arg | Buffer, what = 'ptrace'): number {
  const d = Buffer.isBuffer(data) ? addressOf(data) : data;
  return syscall(what, SYS.ptrace, [request, pid, addr, d], { pid });
}

export function ptraceBuf(request: number, pid: number, addr: Arg | Buffer, data: Buffer, what: string): number {
  const a = Buffer.isBuffer(addr) ? addressOf(addr) : addr;
  return syscall(what, SYS.ptrace, [request, pid, a, addressOf(data)], { pid });
}

export interface WaitResult {
  pid: number;
  status: number;
}

const statusBuf = Buffer.alloc(4);
/** wait4(pid, &status, flags|__WALL); throws on error. Returns pid 0 with WNOHANG and nothing ready. */
export function waitpid(pid: number, flags = 0): WaitResult {
  for (;;) {
    const r = syscallRaw(SYS.wait4, [pid, addressOf(statusBuf), flags | WALL, 0]);
    if (r === -4 /* EINTR */) continue;
    if (r < 0) throw new KernelError('waitpid', -r, pid);
    return { pid: r, status: readI32(statusBuf, 0) };
  }
}

export const WaitStatus = {
  exited: (s: number) => (s & 0x7f) === 0,
  exitCode: (s: number) => (s >> 8) & 0xff,
  signaled: (s: number) => ((s & 0x7f) + 1) >> 1 > 0 && (s & 0xff) !== 0x7f && (s & 0x7f) !== 0,
  termSig: (s: number) => s & 0x7f,
  stopped: (s: number) => (s & 0xff) === 0x7f,
  stopSig: (s: number) => (s >> 8) & 0xff,
  /** PTRACE_EVENT_* carried in a stop status, or 0. */
  event: (s: number) => (s >> 16) & 0xff,
  describe(s: number): string {
    if (WaitStatus.exited(s)) return `exited with status ${WaitStatus.exitCode(s)}`;
    if (WaitStatus.stopped(s)) return `stopped by signal ${WaitStatus.stopSig(s)} (event ${WaitStatus.event(s)})`;
    return `killed by signal ${WaitStatus.termSig(s)}`;
  },
};

export function kill(pid: number, sig: number): void {
  syscall('kill', SYS.kill, [pid, sig], { pid });
}

export function tgkill(tgid: number, tid: number, sig: number): void {
  syscall('tgkill', SYS.tgkill, [tgid, tid, sig], { pid: tid });
}

export function kcmp(pid1: number, pid2: number, type: number, idx1: Arg = 0, idx2: Arg = 0): number {
  return syscall('kcmp', SYS.kcmp, [pid1, pid2, type, idx1, idx2], { pid: pid1, detail: `with pid ${pid2}` });
}

export function pidfdOpen(pid: number): number {
  return syscall('pidfd_open', SYS.pidfd_open, [pid, 0], { pid });
}

export function pidfdGetfd(pidfd: number, targetFd: number, pid: number): number {
  return syscall('pidfd_getfd', SYS.pidfd_getfd, [pidfd, targetFd, 0], { pid, detail: `fd ${targetFd}` });
}

/** amber's own copy of task pid's fd: the same open file description (pidfd_open + pidfd_getfd). */
export function takeFd(pid: number, fd: number): number {
  const pidfd = pidfdOpen(pid);
  try {
    return pidfdGetfd(pidfd, fd, pid);
  } finally {
    close(pidfd);
  }
}

/**
 * Reads len bytes at off of the file behind fd (which must be open for reading) through a
 * mapping of amber's own, not read(2): a read raises FAN_ACCESS / IN_ACCESS on the file, which
 * a task watching it would see, while page faults raise no fsnotify event. Returns -errno when
 * the file cannot be mapped (EACCES: a write-only description; ENODEV: no mmap on this kind).
 */
export function readMapped(fd: number, off: bigint, buf: Buffer, what: string): number {
  if (buf.length === 0) return 0;
  const skew = Number(off % 4096n);
  const len = buf.length + skew;
  const addr = syscallRaw(SYS.mmap, [0, len, PROT.READ, MAP.SHARED, fd, off - BigInt(skew)]);
  if (addr < 0 && addr > -4096) return addr;
  try {
    for (let got = 0; got < buf.length;) {
      const n = processVmRead(process.pid, BigInt(addr + skew + got), buf, buf.length - got, got);
      if (n === 0) throw new KernelError('process_vm_readv (own mapping)', 14, undefined, what);
      got += n;
    }
    return buf.length;
  } finally {
    syscallRaw(SYS.munmap, [addr, len]);
  }
}

/**
 * Writes len bytes at off of the file behind src into dst (at dst's position), from a mapping of
 * amber's own, so that src sees no FAN_ACCESS / IN_ACCESS (sendfile and read raise them).
 */
export function copyMapped(src: number, off: bigint, len: bigint, dst: number, what: string): void {
  const skew = off % 4096n;
  const chunkMax = 1n << 30n;
  for (let done = 0n; done < len;) {
    const chunk = len - done > chunkMax ? chunkMax : len - done;
    const mapLen = chunk + skew;
    const addr = BigInt(syscall('mmap', SYS.mmap, [0, mapLen, PROT.READ, MAP.SHARED, src, off + done - skew], { detail: what }));
    try {
      for (let put = 0n; put < chunk;) {
        const n = syscall('write', SYS.write, [dst, addr + skew + put, chunk - put], { detail: what });
        if (n === 0) throw new KernelError('write', 28, undefined, what);
        put += BigInt(n);
      }
    } finally {
      syscallRaw(SYS.munmap, [addr, mapLen]);
    }
    done += chunk;
  }
}

export function close(fd: number): void {
  syscallRaw(SYS.close, [fd]);
}

export function prctl(option: number, a: Arg = 0, b: Arg = 0, c: Arg = 0, d: Arg = 0): number {
  return syscall('prctl', SYS.prctl, [option, a, b, c, d]);
}

export function getRobustList(tid: number): { head: bigint; len: bigint } {
  const head = Buffer.alloc(8);
  const len = Buffer.alloc(8);
  syscall('get_robust_list', SYS.get_robust_list, [tid, addressOf(head), addressOf(len)], { pid: tid });
  return { head: readU64(head, 0), len: readU64(len, 0) };
}

/** The soft and hard limit of `resource` of another process (prlimit64 without a new limit). */
export function getRlimitOf(pid: number, resource: number): { cur: bigint; max: bigint } {
  const old = Buffer.alloc(16);
  syscall('prlimit64', SYS.prlimit64, [pid, resource, 0, addressOf(old)], { pid, detail: `resource ${resource}` });
  return { cur: readU64(old, 0), max: readU64(old, 8) };
}

const iovLocal = Buffer.alloc(16);
const iovRemote = Buffer.alloc(16);

/** Copies len bytes of task memory at addr into buf (at offset); returns bytes copied. */
export function processVmRead(pid: number, addr: bigint, buf: Buffer, len = buf.length, offset = 0): number {
  writeU64(iovLocal, 0, addressOf(buf) + BigInt(offset));
  writeU64(iovLocal, 8, BigInt(len));
  writeU64(iovRemote, 0, addr);
  writeU64(iovRemote, 8, BigInt(len));
  return syscall('process_vm_readv', SYS.process_vm_readv, [pid, addressOf(iovLocal), 1, addressOf(iovRemote), 1, 0], {
    pid, detail: `address 0x${addr.toString(16)}`,
  });
}

export function processVmWrite(pid: number, addr: bigint, buf: Buffer, len = buf.length, offset = 0): number {
  writeU64(iovLocal, 0, addressOf(buf) + BigInt(offset));
  writeU64(iovLocal, 8, BigInt(len));
  writeU64(iovRemote, 0, addr);
  writeU64(iovRemote, 8, BigInt(len));
  return syscall('process_vm_writev', SYS.process_vm_writev, [pid, addressOf(iovLocal), 1, addressOf(iovRemote), 1, 0], {
    pid, detail: `address 0x${addr.toString(16)}`,
  });
}

export function fcntl(fd: number, cmd: number, arg: Arg = 0, what = 'fcntl'): number {
  return syscall(what, SYS.fcntl, [fd, cmd, arg], { detail: `fd ${fd}` });
}

/** pipe2(2): [read end, write end]. */
export function pipe2(flags = 0): [number, number] {
  const fds = Buffer.alloc(8);
  syscall('pipe2', SYS.pipe2, [addressOf(fds), flags]);
  return [readI32(fds, 0), readI32(fds, 4)];
}

/** tee(2): duplicates up to len bytes of one pipe into another without consuming them. */
export function tee(fdIn: number, fdOut: number, len: number, flags = 0): number {
  return syscall('tee', SYS.tee, [fdIn, fdOut, len, flags]);
}

/** read(2) into buf at offset; returns bytes read. */
export function readFd(fd: number, buf: Buffer, offset = 0, len = buf.length - offset): number {
  return syscall('read', SYS.read, [fd, addressOf(buf) + BigInt(offset), len], { detail: `fd ${fd}` });
}

/** memfd_create(2) in amber itself; flags are MFD_*. */
export function memfdCreate(name: string, flags: number): number {
  const n = Buffer.from(name + '\0');
  return syscall('memfd_create', SYS.memfd_create, [addressOf(n), flags], { detail: name });
}

/**
 * wait4 that hands an EINTR back instead of retrying (undefined): a caller that may be
 * interrupted decides what an interruption means.
 */
export function waitpidOrInterrupted(pid: number, flags = 0): WaitResult | undefined {
  const r = syscallRaw(SYS.wait4, [pid, addressOf(statusBuf), flags | WALL, 0]);
  if (r === -4 /* EINTR */) return undefined;
  if (r < 0) throw new KernelError('waitpid', -r, pid);
  return { pid: r, status: readI32(statusBuf, 0) };
}

/** rt_sigaction(2) for amber itself, with struct kernel_sigaction buffers (KSIGACTION_SIZE). */
export function rtSigaction(sig: number, act: Buffer | null, old: Buffer | null): void {
  syscall('rt_sigaction', SYS.rt_sigaction, [sig, act ? addressOf(act) : 0, old ? addressOf(old) : 0, 8], { detail: `signal ${sig}` });
}

/** An anonymous private mapping in amber itself. */
export function mmapAnonymous(len: number, prot: number): bigint {
  // user addresses (< 2^47) are exact as a double
  return BigInt(syscall('mmap', SYS.mmap, [0, len, prot, MAP.PRIVATE | MAP.ANONYMOUS, -1n & 0xffffffffffffffffn, 0]));
}

export function mprotect(addr: bigint, len: number, prot: number): void {
  syscall('mprotect', SYS.mprotect, [addr, len, prot], { detail: `0x${addr.toString(16)}` });
}

export function munmap(addr: bigint, len: number): void {
  syscall('munmap', SYS.munmap, [addr, len], { detail: `0x${addr.toString(16)}` });
}

const SIGEV_THREAD_ID = 4;

/** A POSIX timer of amber's that sends sig to one of amber's own threads (timer_create). */
export function timerCreateForThread(sig: number, tid: number): number {
  const sev = Buffer.alloc(64);
  sev.writeInt32LE(sig, 8); // sigev_signo
  sev.writeInt32LE(SIGEV_THREAD_ID, 12); // sigev_notify
  sev.writeInt32LE(tid, 16); // sigev_notify_thread_id
  const id = Buffer.alloc(4);
  syscall('timer_create', SYS.timer_create, [CLOCK_MONOTONIC, addressOf(sev), addressOf(id)]);
  return readI32(id, 0);
}

const itimerspec = Buffer.alloc(32);
/** Arms a timer to fire every periodMs (0: disarms it). */
export function timerSetPeriodic(id: number, periodMs: number): void {
  const sec = BigInt(Math.floor(periodMs / 1000));
  const nsec = BigInt((periodMs % 1000) * 1_000_000);
  for (const at of [0, 16]) {
    writeU64(itimerspec, at, sec);
    writeU64(itimerspec, at + 8, nsec);
  }
  syscall('timer_settime', SYS.timer_settime, [id, 0, addressOf(itimerspec), 0]);
}

/** fchown(2) of an fd of amber's; what names the file for the error. */
export function fchown(fd: number, uid: number, gid: number, what: string): void {
  syscall('fchown', SYS.fchown, [fd, uid, gid], { detail: what });
}

/** fchmod(2) of an fd of amber's. */
export function fchmod(fd: number, mode: number, what: string): void {
  syscall('fchmod', SYS.fchmod, [fd, mode], { detail: what });
}
