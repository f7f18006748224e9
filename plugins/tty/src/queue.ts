import {
  AmberError, TIOC, getTermios, ioctlGetInt, ioctlSetInt, readFd, readableNow, setTermios, sleepSync, writeFdAll,
  type Termios,
} from '@amber/core';
import { VC, drainMode, isCanonical, refillMode } from './termios';

/** Bytes queued for one end of a pty to read; lines and eofAt as in TtyDataEntry. */
export interface Queued {
  data: Buffer;
  /** canonical input: how many bytes are completed lines (the rest is a partial line) */
  linesBytes?: number;
  /** offsets in data where a line ended by VEOF ends */
  eofAt: number[];
}

export class TtyQueueError extends AmberError {
  constructor(readonly index: number, what: string) {
    super(`pty ${index}: ${what}`);
  }
}

const CHUNK = 64 * 1024;

/**
 * The line discipline holds at most N_TTY_BUF_SIZE - 1 bytes to read; what is written beyond
 * waits in the tty's flip buffers and reaches the line discipline only as a reader makes room.
 */
export const LDISC_HOLDS = 4095;

/** More typed input than amber can put back with nothing acting on it. */
export class TooMuchInputError extends AmberError {
  constructor(readonly index: number, bytes: string) {
    super(`/dev/pts/${index}: ${bytes} bytes typed into it wait to be read, more than its line discipline holds (${LDISC_HOLDS}); ` +
      `amber could not put them back unchanged: let the program read its input and dump again; nothing was changed and the process keeps running`);
  }
}

function readAvailable(fd: number, onRead: (bytes: Buffer) => boolean): void {
  const buf = Buffer.alloc(CHUNK);
  for (;;) {
    const n = readFd(fd, buf);
    if (!onRead(buf.subarray(0, n))) return;
  }
}

/**
 * What the master has to read (what the slave side wrote, echoes included). The master's own
 * line discipline is always raw; packet mode, which would prefix every read with a status byte,
 * is off meanwhile.
 */
export function readMasterQueue(master: number): Queued {
  const packet = ioctlGetInt(master, TIOC.TIOCGPKT, 'ioctl(TIOCGPKT)');
  if (packet) ioctlSetInt(master, TIOC.TIOCPKT, 0, 'ioctl(TIOCPKT)');
  try {
    const parts: Buffer[] = [];
    while (readableNow(master)) readAvailable(master, (b) => (parts.push(Buffer.from(b)), false));
    return { data: Buffer.concat(parts), eofAt: [] };
  } finally {
    if (packet) ioctlSetInt(master, TIOC.TIOCPKT, 1, 'ioctl(TIOCPKT)');
  }
}

/**
 * What the slave has to read (what was typed into the master). In canonical mode a read returns
 * one completed line, so those come first, one by one (a line VEOF ended reads without it, an
 * empty one as 0 bytes); the partial line after them only reads once canonical mode is off. The
 * termios is put back as it was.
 */
export function readSlaveQueue(slave: number, termios: Termios, index: number): Queued {
  // a full line discipline may have more behind it, in the flip buffers: refused before a byte is read
  if (!isCanonical(termios) && ioctlGetInt(slave, TIOC.TIOCINQ, 'ioctl(TIOCINQ)') >= LDISC_HOLDS) throw new TooMuchInputError(index, `${LDISC_HOLDS} or more`);
  const parts: Buffer[] = [];
  const eofAt: number[] = [];
  let size = 0;
  let linesBytes: number | undefined;
  if (isCanonical(termios)) {
    const ends = new Set([0x0a, termios.cc[VC.EOL], termios.cc[VC.EOL2]].filter((c) => c !== 0));
    while (readableNow(slave)) {
      const line = Buffer.alloc(CHUNK);
      const n = readFd(slave, line);
      if (n === 0 || !ends.has(line[n - 1])) eofAt.push(size + n);
      parts.push(line.subarray(0, n));
      size += n;
    }
    linesBytes = size;
  }
  setTermios(slave, drainMode(termios));
  try {
    readAvailable(slave, (b) => (b.length ? (parts.push(Buffer.from(b)), true) : false));
  } finally {
    setTermios(slave, termios);
  }
  return { data: Buffer.concat(parts), linesBytes, eofAt };
}

/** A byte none of data holds and no line end is: the line-editing characters while refilling. */
function unusedByte(data: Buffer, termios: Termios): number {
  const used = new Set<number>(data);
  for (const c of [0x0a, termios.cc[VC.EOF], termios.cc[VC.EOL], termios.cc[VC.EOL2]]) used.add(c);
  for (let b = 1; b < 256; b++) if (!used.has(b)) return b;
  return 0;
}

/** The input bytes as they must be typed again: each line VEOF ended gets its VEOF back. */
function typed(q: Queued, veof: number): Buffer {
  if (!q.eofAt.length) return q.data;
  const out: Buffer[] = [];
  let at = 0;
  for (const end of q.eofAt) {
    out.push(q.data.subarray(at, end), Buffer.from([veof]));
    at = end;
  }
  out.push(q.data.subarray(at));
  return Buffer.concat(out);
}

const SETTLE_MS = 5000;

/** Waits until fd's line discipline holds at least n readable bytes (the flip buffers are processed asynchronously). */
function waitQueued(fd: number, n: number, index: number, side: string): void {
  if (n === 0) return;
  const until = Date.now() + SETTLE_MS;
  while (ioctlGetInt(fd, TIOC.TIOCINQ, 'ioctl(TIOCINQ)') < n) {
    if (Date.now() > until) throw new TtyQueueError(index, `the ${n} queued bytes written back did not reach the ${side} within ${SETTLE_MS / 1000} s`);
    readableNow(fd);
    sleepSync(1);
  }
}

/**
 * Puts queued bytes back into a pty pair through amber's fds of both ends (the slave's must not
 * block: a write that finds no room fails instead of hanging amber): what the master had to
 * read is written by the slave, what the slave had to read is typed into the master, both with
 * the slave's termios in refill mode (refillMode); then `termios` is set. Packet mode must be off.
 */
export function refillPair(index: number, master: number, slave: number, termios: Termios, toMaster: Queued | undefined, toSlave: Queued | undefined): void {
  const input = toSlave ? typed(toSlave, termios.cc[VC.EOF]) : Buffer.alloc(0);
  setTermios(slave, refillMode(termios, unusedByte(toSlave?.data ?? Buffer.alloc(0), termios)));
  try {
    // the master's own line discipline is always raw, whatever the slave's termios: what the
    // slave writes needs no wait (and may exceed what the line discipline holds at once)
    if (toMaster?.data.length) writeFdAll(slave, toMaster.data, `pty ${index} slave`);
    if (input.length && toSlave) {
      writeFdAll(master, input, `pty ${index} master`);
      const lines = Math.min(toSlave.linesBytes ?? toSlave.data.length, LDISC_HOLDS);
      waitQueued(slave, lines, index, 'slave');
      // only a partial line left: a poll that finds nothing readable waits for the flip buffers
      if (lines === 0) readableNow(slave);
    }
  } finally {
    setTermios(slave, termios);
  }
}

/** The termios of the pair behind any of its fds (on a master, the ioctl reaches the slave's). */
export { getTermios };
