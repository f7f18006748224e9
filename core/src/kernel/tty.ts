import { addressOf, sleepSync, syscall, syscallRaw } from './libc';
import { SYS } from './constants';
import { KernelError } from './errors';

/** Terminal ioctls (asm-generic/ioctls.h, x86-64 numbers). */
export const TIOC = {
  TCGETS2: 0x802c542a,
  TCSETS2: 0x402c542b,
  TIOCEXCL: 0x540c,
  TIOCNXCL: 0x540d,
  TIOCSCTTY: 0x540e,
  TIOCGPGRP: 0x540f,
  TIOCSPGRP: 0x5410,
  TIOCGWINSZ: 0x5413,
  TIOCSWINSZ: 0x5414,
  TIOCINQ: 0x541b,
  TIOCPKT: 0x5420,
  TIOCNOTTY: 0x5422,
  TIOCGSID: 0x5429,
  TIOCGPTN: 0x80045430,
  TIOCSPTLCK: 0x40045431,
  TIOCGDEV: 0x80045432,
  TIOCGPKT: 0x80045438,
  TIOCGPTLCK: 0x80045439,
  TIOCGEXCL: 0x80045440,
  TIOCGLCKTRMIOS: 0x5456,
  TIOCSLCKTRMIOS: 0x5457,
} as const;

/** struct termios2: four flag words, c_line, NCCS (19) control characters, then the two speeds. */
export const TERMIOS2_SIZE = 44;
/** struct termios (the locked-termios ioctls take this one, without the speeds). */
export const TERMIOS_SIZE = 36;
export const NCCS = 19;

export interface Termios {
  iflag: number;
  oflag: number;
  cflag: number;
  lflag: number;
  line: number;
  cc: number[];
  ispeed: number;
  ospeed: number;
}

export interface Winsize {
  row: number;
  col: number;
  xpixel: number;
  ypixel: number;
}

export function decodeTermios(b: Buffer): Termios {
  const cc = [...b.subarray(17, 17 + NCCS)];
  const speeds = b.length >= TERMIOS2_SIZE;
  return {
    iflag: b.readUInt32LE(0), oflag: b.readUInt32LE(4), cflag: b.readUInt32LE(8), lflag: b.readUInt32LE(12), line: b[16], cc,
    ispeed: speeds ? b.readUInt32LE(36) : 0, ospeed: speeds ? b.readUInt32LE(40) : 0,
  };
}

export function encodeTermios(t: Termios, size = TERMIOS2_SIZE): Buffer {
  const b = Buffer.alloc(size);
  b.writeUInt32LE(t.iflag >>> 0, 0);
  b.writeUInt32LE(t.oflag >>> 0, 4);
  b.writeUInt32LE(t.cflag >>> 0, 8);
  b.writeUInt32LE(t.lflag >>> 0, 12);
  b[16] = t.line;
  for (let i = 0; i < NCCS; i++) b[17 + i] = t.cc[i] ?? 0;
  if (size >= TERMIOS2_SIZE) {
    b.writeUInt32LE(t.ispeed >>> 0, 36);
    b.writeUInt32LE(t.ospeed >>> 0, 40);
  }
  return b;
}

export function decodeWinsize(b: Buffer): Winsize {
  return { row: b.readUInt16LE(0), col: b.readUInt16LE(2), xpixel: b.readUInt16LE(4), ypixel: b.readUInt16LE(6) };
}

export function encodeWinsize(w: Winsize): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt16LE(w.row, 0);
  b.writeUInt16LE(w.col, 2);
  b.writeUInt16LE(w.xpixel, 4);
  b.writeUInt16LE(w.ypixel, 6);
  return b;
}

/** ioctl(2) on an fd of amber's with a structure. */
export function ioctlBuf(fd: number, request: number, buf: Buffer, what: string): number {
  return syscall(what, SYS.ioctl, [fd, request, addressOf(buf)], { detail: `fd ${fd}` });
}

/** An ioctl that writes one int: its value. */
export function ioctlGetInt(fd: number, request: number, what: string): number {
  const b = Buffer.alloc(4);
  ioctlBuf(fd, request, b, what);
  return b.readInt32LE(0);
}

/** An ioctl that reads one int from memory (TIOCSPTLCK, TIOCPKT, TIOCSPGRP). */
export function ioctlSetInt(fd: number, request: number, value: number, what: string): void {
  const b = Buffer.alloc(4);
  b.writeInt32LE(value, 0);
  ioctlBuf(fd, request, b, what);
}

/** An ioctl whose argument is a plain value (TIOCEXCL, TIOCSCTTY); -errno instead of throwing. */
export function ioctlRaw(fd: number, request: number, arg = 0): number {
  return syscallRaw(SYS.ioctl, [fd, request, arg]);
}

export function getTermios(fd: number): Termios {
  const b = Buffer.alloc(TERMIOS2_SIZE);
  ioctlBuf(fd, TIOC.TCGETS2, b, 'ioctl(TCGETS2)');
  return decodeTermios(b);
}

/** TCSETS2: now, neither draining output nor flushing input (TCSANOW). */
export function setTermios(fd: number, t: Termios): void {
  ioctlBuf(fd, TIOC.TCSETS2, encodeTermios(t), 'ioctl(TCSETS2)');
}

export function getWinsize(fd: number): Winsize {
  const b = Buffer.alloc(8);
  ioctlBuf(fd, TIOC.TIOCGWINSZ, b, 'ioctl(TIOCGWINSZ)');
  return decodeWinsize(b);
}

export function setWinsize(fd: number, w: Winsize): void {
  ioctlBuf(fd, TIOC.TIOCSWINSZ, encodeWinsize(w), 'ioctl(TIOCSWINSZ)');
}

export const POLL = { IN: 0x1, OUT: 0x4, ERR: 0x8, HUP: 0x10 } as const;

/** poll(2) of one fd with no timeout: its revents. */
export function pollNow(fd: number, events: number = POLL.IN): number {
  const p = Buffer.alloc(8);
  p.writeInt32LE(fd, 0);
  p.writeInt16LE(events, 4);
  syscall('poll', SYS.poll, [addressOf(p), 1, 0], { detail: `fd ${fd}` });
  return p.readInt16LE(6);
}

/**
 * Whether fd has something to read now. On a tty, a poll that finds nothing first lets the flip
 * buffers reach the line discipline, so it also waits for bytes written from the other end to be
 * processed.
 */
export function readableNow(fd: number): boolean {
  return (pollNow(fd) & POLL.IN) !== 0;
}

/**
 * write(2) of all of data, from amber, into a tty fd that may be non-blocking. The other end's
 * line discipline takes bytes from the flip buffers asynchronously (a kworker), so on a busy
 * machine a write can find no room for a while although the bytes fit: it is retried while poll
 * says there is room again, for up to settleMs, and only then fails with EAGAIN.
 */
export function writeFdAll(fd: number, data: Buffer, what: string, settleMs = 5000): void {
  const until = Date.now() + settleMs;
  for (let done = 0; done < data.length;) {
    let n = 0;
    try {
      n = syscall('write', SYS.write, [fd, addressOf(data) + BigInt(done), data.length - done], { detail: what });
    } catch (e) {
      if (!(e instanceof KernelError) || e.errno !== 11 /* EAGAIN */) throw e;
    }
    if (n > 0) {
      done += n;
      continue;
    }
    if (Date.now() > until) throw new KernelError('write', 11 /* EAGAIN */, undefined, `${what}, no room for ${data.length - done} more bytes within ${settleMs / 1000} s`);
    if (!(pollNow(fd, POLL.OUT) & POLL.OUT)) sleepSync(1);
  }
}
