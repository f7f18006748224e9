import { constants, readFileSync } from 'node:fs';
import { AmberError, O, type FdResource } from '@amber/core';

// device numbers (linux/major.h): what a terminal fd is, from its rdev
const TTY_MAJOR = 4;
const TTYAUX_MAJOR = 5;
const UNIX98_PTY_SLAVE_MAJOR = 136;
const UNIX98_PTY_MAJOR_COUNT = 8;

export const majorOf = (rdev: bigint | number) => Number(((BigInt(rdev) >> 8n) & 0xfffn) | ((BigInt(rdev) >> 32n) & ~0xfffn));
export const minorOf = (rdev: bigint | number) => Number((BigInt(rdev) & 0xffn) | ((BigInt(rdev) >> 12n) & ~0xffn));
/** The 32-bit encoding (the kernel's new_encode_dev, /proc/PID/stat's tty_nr, CRIU's rdev). */
export const encodeDev = (major: number, minor: number) => ((minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12)) >>> 0;

export type TerminalEnd =
  | { what: 'master'; rdev: number }
  | { what: 'slave'; index: number; rdev: number }
  | { what: 'ctty'; rdev: number }
  | { what: 'unsupported'; name: string };

export const PTMX_RDEV = encodeDev(TTYAUX_MAJOR, 2);
export const CTTY_RDEV = encodeDev(TTYAUX_MAJOR, 0);

export const slaveRdev = (index: number) => encodeDev(UNIX98_PTY_SLAVE_MAJOR + (index >> 8), index & 0xff);

/** The pty index of a slave's device number, or undefined for any other device. */
export function slaveIndexOf(rdev: number): number | undefined {
  const major = majorOf(rdev);
  if (major < UNIX98_PTY_SLAVE_MAJOR || major >= UNIX98_PTY_SLAVE_MAJOR + UNIX98_PTY_MAJOR_COUNT) return undefined;
  return (major - UNIX98_PTY_SLAVE_MAJOR) * 256 + minorOf(rdev);
}

/** Character devices that are terminals; O_PATH fds open nothing and stay the regular-file kind's. */
export function isTerminalFd(fd: FdResource): boolean {
  if ((fd.mode & constants.S_IFMT) !== constants.S_IFCHR || fd.info.flags & O.PATH) return false;
  const major = majorOf(fd.rdev);
  if (major === TTYAUX_MAJOR) return minorOf(fd.rdev) <= 2;
  return major === TTY_MAJOR || slaveIndexOf(Number(fd.rdev & 0xffffffffn)) !== undefined;
}

export function classify(fd: FdResource): TerminalEnd {
  const major = majorOf(fd.rdev);
  const minor = minorOf(fd.rdev);
  const rdev = encodeDev(major, minor);
  if (major === TTYAUX_MAJOR && minor === 2) return { what: 'master', rdev };
  if (major === TTYAUX_MAJOR && minor === 0) return { what: 'ctty', rdev };
  if (major === TTYAUX_MAJOR && minor === 1) return { what: 'unsupported', name: 'the system console' };
  const index = slaveIndexOf(rdev);
  if (index !== undefined) return { what: 'slave', index, rdev };
  if (major === TTY_MAJOR && minor < 64) return { what: 'unsupported', name: minor === 0 ? 'the current virtual console' : `virtual console ${minor}` };
  return { what: 'unsupported', name: `serial line ${minor - 64}` };
}

/** A terminal amber does not restore: refused at dump, before anything is changed. */
export class UnsupportedTerminalError extends AmberError {
  constructor(readonly pid: number, readonly fd: number, readonly path: string, name: string) {
    super(`fd ${fd} of pid ${pid} is ${path} (${name}): amber restores pseudo-terminals only, not consoles or serial lines; nothing was changed and the process keeps running`);
  }
}

/** /proc/PID/stat's session, tty_nr and tpgid: the controlling terminal and its foreground group. */
export function controllingTerminalOf(pid: number): { session: number; ttyNr: number; tpgid: number } {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { session: Number(f[3]), ttyNr: Number(f[4]) >>> 0, tpgid: Number(f[5]) };
}
