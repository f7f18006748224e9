import { openSync } from 'node:fs';
import { KSIGACTION_SIZE, O, SIG, SYS } from './constants';
import { KernelError } from './errors';
import { addressOf, syscall, syscallRaw } from './libc';
import { rtSigaction } from './syscalls';
import { ioctlGetInt, TIOC } from './tty';

// amber's own controlling terminal: the terminal a shell job is restored onto (--shell-job).
// (The ioctls a plugin injects into a task go through remote.sys.ioctl; these are amber's own.)

export function getsid(pid = 0): number {
  return syscall('getsid', SYS.getsid, [pid], { pid: pid || undefined });
}

export function getpgid(pid = 0): number {
  return syscall('getpgid', SYS.getpgid, [pid], { pid: pid || undefined });
}

/** An fd on amber's controlling terminal (/dev/tty), or undefined when amber has none (ENXIO). */
export function openControllingTerminal(): number | undefined {
  try {
    return openSync('/dev/tty', O.RDWR | O.NOCTTY | O.CLOEXEC);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENXIO') return undefined;
    throw err;
  }
}

/** The foreground process group of the terminal behind fd. */
export function tcgetpgrp(fd: number): number {
  return ioctlGetInt(fd, TIOC.TIOCGPGRP, 'ioctl(TIOCGPGRP)');
}

/**
 * Makes pgrp the foreground group of amber's terminal behind fd. A caller that is not in the
 * foreground itself (amber, once it handed the terminal to the job) would get SIGTTOU, which
 * stops it, unless the signal is ignored: the kernel lets a process that ignores SIGTTOU change
 * the foreground group from the background, as a shell does.
 */
export function tcsetpgrp(fd: number, pgrp: number): void {
  const ignore = Buffer.alloc(KSIGACTION_SIZE);
  ignore.writeBigUInt64LE(1n, 0); // SIG_IGN
  const old = Buffer.alloc(KSIGACTION_SIZE);
  rtSigaction(SIG.TTOU, ignore, old);
  try {
    const pgrpBuf = Buffer.alloc(4);
    pgrpBuf.writeInt32LE(pgrp, 0);
    const r = syscallRaw(SYS.ioctl, [fd, TIOC.TIOCSPGRP, addressOf(pgrpBuf)]);
    if (r < 0) throw new KernelError('ioctl(TIOCSPGRP)', -r, undefined, `fd ${fd}, process group ${pgrp}`);
  } finally {
    rtSigaction(SIG.TTOU, old, null);
  }
}
