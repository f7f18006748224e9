import { addressOf, syscall, syscallRaw } from '../kernel/libc';
import { SYS } from '../kernel/constants';
import { KernelError } from '../kernel/errors';
import { getsockoptBytes, getsockoptInt, setsockoptInt } from '../kernel/sockets';

// The calls TCP repair makes on amber's own copy of a socket, and the kernel's numbers for them
// (linux/tcp.h, linux/sockios.h).

export const SOL_TCP = 6;
export const TCP = {
  NODELAY: 1, MAXSEG: 2, CORK: 3, KEEPIDLE: 4, KEEPINTVL: 5, KEEPCNT: 6, INFO: 11,
  USER_TIMEOUT: 18, REPAIR: 19, REPAIR_QUEUE: 20, QUEUE_SEQ: 21, REPAIR_OPTIONS: 22, TIMESTAMP: 24,
  REPAIR_WINDOW: 29,
} as const;
/** TCP_REPAIR values: off without the window probe the plain "off" sends. */
export const REPAIR = { ON: 1, OFF: 0, OFF_NO_WP: -1 } as const;
export const REPAIR_QUEUE = { NONE: 0, RECV: 1, SEND: 2 } as const;
/** Option codes of TCP_REPAIR_OPTIONS (struct tcp_repair_opt { u32 code; u32 val; }). */
export const TCPOPT = { MAXSEG: 2, WINDOW: 3, SACK_PERM: 4, TIMESTAMP: 8 } as const;
const SIOCINQ = 0x541b;
const SIOCOUTQ = 0x5411;
const SIOCOUTQNSD = 0x894b;
const MSG_PEEK = 2;
const MSG_DONTWAIT = 0x40;

export const tcpGet = (fd: number, opt: number, what: string): number => getsockoptInt(fd, SOL_TCP, opt, `getsockopt(${what})`);
export const tcpSet = (fd: number, opt: number, value: number, what: string): void => setsockoptInt(fd, SOL_TCP, opt, value, `setsockopt(${what})`);
export const tcpGetBytes = (fd: number, opt: number, size: number, what: string): Buffer => getsockoptBytes(fd, SOL_TCP, opt, size, `getsockopt(${what})`);

export function tcpSetBytes(fd: number, opt: number, value: Buffer, what: string): void {
  syscall(`setsockopt(${what})`, SYS.setsockopt, [fd, SOL_TCP, opt, addressOf(value), value.length], { detail: `fd ${fd}` });
}

function ioctlInt(fd: number, request: number, what: string): number {
  const v = Buffer.alloc(4);
  syscall(`ioctl(${what})`, SYS.ioctl, [fd, request, addressOf(v)], { detail: `fd ${fd}` });
  return v.readInt32LE(0);
}

/** Bytes in the receive queue not read yet; bytes in the send queue (sent-not-acked + unsent); unsent alone. */
export const queuedToRead = (fd: number): number => ioctlInt(fd, SIOCINQ, 'SIOCINQ');
export const queuedToSend = (fd: number): number => ioctlInt(fd, SIOCOUTQ, 'SIOCOUTQ');
export const notSentYet = (fd: number): number => ioctlInt(fd, SIOCOUTQNSD, 'SIOCOUTQNSD');

/** Exactly len bytes of the selected repair queue, peeked (one byte more is asked, to catch a queue longer than said). */
export function peekQueue(fd: number, len: number, what: string): Buffer {
  const buf = Buffer.alloc(len + 1);
  const n = syscallRaw(SYS.recvfrom, [fd, addressOf(buf), buf.length, MSG_PEEK | MSG_DONTWAIT, 0, 0]);
  if (n < 0) throw new KernelError(`recv(MSG_PEEK, ${what})`, -n, undefined, `fd ${fd}`);
  if (n !== len) throw new KernelError(`recv(MSG_PEEK, ${what})`, 5 /* EIO */, undefined, `fd ${fd}: ${n} bytes queued, ${len} expected`);
  return buf.subarray(0, len);
}

/**
 * Sends all of data into the selected queue, never waiting (a full buffer is an error, not a hang). In repair mode the receive queue takes each send as
 * one linear buffer, which a large one may not get (ENOMEM): the chunk is halved until it fits.
 */
export function sendAll(fd: number, data: Buffer, what: string): void {
  let chunk = data.length;
  for (let off = 0; off < data.length;) {
    const len = Math.min(chunk, data.length - off);
    const n = syscallRaw(SYS.sendto, [fd, addressOf(data) + BigInt(off), len, MSG_DONTWAIT, 0, 0]);
    if (n > 0) { off += n; continue; }
    if (chunk > 1024 && (n === -12 /* ENOMEM */ || n === 0 || n === -11 /* EAGAIN */)) { chunk >>= 1; continue; }
    throw new KernelError(`send(${what})`, n < 0 ? -n : 5, undefined, `fd ${fd}: ${off} of ${data.length} bytes`);
  }
}

const SOL_SOCKET = 1;
const SO_SNDBUFFORCE = 32;
const SO_RCVBUFFORCE = 33;
const SO_SNDBUF = 7;
const SO_RCVBUF = 8;
const SO_BUF_LOCK = 72;

/**
 * Makes the buffers of a new socket big enough for the queues about to be put back (a new
 * socket starts small, and its send buffer would refuse the unsent part), then lets the kernel
 * tune them again (SO_BUF_LOCK 0): the caller sets any size the program itself had set.
 */
export function roomForQueues(fd: number, inq: number, outq: number): void {
  const grow = (get: number, force: number, need: number, what: string) => {
    // the kernel doubles what it is given and reports the doubled size
    if (getsockoptInt(fd, SOL_SOCKET, get, `getsockopt(${what})`) < 2 * need) setsockoptInt(fd, SOL_SOCKET, force, need + 65536, `setsockopt(${what}FORCE)`);
  };
  grow(SO_SNDBUF, SO_SNDBUFFORCE, outq, 'SO_SNDBUF');
  grow(SO_RCVBUF, SO_RCVBUFFORCE, inq, 'SO_RCVBUF');
  setsockoptInt(fd, SOL_SOCKET, SO_BUF_LOCK, 0, 'setsockopt(SO_BUF_LOCK)');
}
