import { addressOf, syscallRaw } from './libc';
import { SYS } from './constants';
import { KernelError } from './errors';
import { MSG, SO, SOL_SOCKET, getsockoptInt, setsockoptInt } from './sockets';

// The receive queue of a datagram socket (UDP, ping, raw) read without consuming it, from
// amber's copy: MSG_PEEK alone always answers the first datagram, so SO_PEEK_OFF is set and each
// peek moves on by what it returned — one whole datagram at a time, boundaries kept. The
// socket's own SO_PEEK_OFF (the program's, -1 when off) is put back afterwards.

const MAX_DATAGRAM = 65536;
const SOCKADDR_STORAGE = 128;

export interface PeekedDatagram {
  data: Buffer;
  /** The sender's address as recvmsg gave it (a sockaddr_in / sockaddr_in6 ...), empty if none. */
  from: Buffer;
}

/** One recvmsg into buffers of amber's; returns the length received (-errno on failure) and the name's length. */
function recvmsgRaw(fd: number, data: Buffer, name: Buffer, flags: number): { n: number; nameLen: number; msgFlags: number } {
  // struct msghdr (56 bytes) + one iovec (16)
  const msg = Buffer.alloc(72);
  msg.writeBigUInt64LE(addressOf(name), 0);
  msg.writeUInt32LE(name.length, 8);
  msg.writeBigUInt64LE(addressOf(msg) + 56n, 16);
  msg.writeBigUInt64LE(1n, 24);
  msg.writeBigUInt64LE(addressOf(data), 56);
  msg.writeBigUInt64LE(BigInt(data.length), 64);
  const n = syscallRaw(SYS.recvmsg, [fd, addressOf(msg), flags]);
  return { n, nameLen: msg.readUInt32LE(8), msgFlags: msg.readInt32LE(48) };
}

/** Every datagram queued to read on fd (amber's copy of a socket), in order, none consumed. */
export function peekDatagrams(fd: number): PeekedDatagram[] {
  const own = getsockoptInt(fd, SOL_SOCKET, SO.PEEK_OFF, 'getsockopt(SO_PEEK_OFF)');
  setsockoptInt(fd, SOL_SOCKET, SO.PEEK_OFF, 0, 'setsockopt(SO_PEEK_OFF)');
  const out: PeekedDatagram[] = [];
  try {
    const data = Buffer.alloc(MAX_DATAGRAM);
    const name = Buffer.alloc(SOCKADDR_STORAGE);
    for (;;) {
      const { n, nameLen, msgFlags } = recvmsgRaw(fd, data, name, MSG.PEEK | MSG.DONTWAIT | MSG.TRUNC);
      if (n === -11 /* EAGAIN */) return out;
      if (n === -4 /* EINTR */) continue;
      if (n < 0) throw new KernelError('recvmsg(MSG_PEEK)', -n, undefined, `fd ${fd}`);
      if (msgFlags & MSG.TRUNC && n > data.length) throw new KernelError('recvmsg(MSG_PEEK)', 90 /* EMSGSIZE */, undefined, `a datagram of ${n} bytes`);
      out.push({ data: Buffer.from(data.subarray(0, n)), from: Buffer.from(name.subarray(0, Math.min(nameLen, name.length))) });
    }
  } finally {
    setsockoptInt(fd, SOL_SOCKET, SO.PEEK_OFF, own, 'setsockopt(SO_PEEK_OFF)');
  }
}

/** sendto from amber's fd; returns bytes sent or -errno. */
export function sendDatagram(fd: number, data: Buffer, to: Buffer | undefined): number {
  return syscallRaw(SYS.sendto, [fd, addressOf(data), data.length, MSG.DONTWAIT | MSG.NOSIGNAL, to ? addressOf(to) : 0, to ? to.length : 0]);
}

/** bind from amber's fd to a raw sockaddr; returns 0 or -errno. */
export function bindRaw(fd: number, addr: Buffer): number {
  return syscallRaw(SYS.bind, [fd, addressOf(addr), addr.length]);
}

/** setsockopt of a structure, from amber's fd; returns 0 or -errno. */
export function setsockoptRaw(fd: number, level: number, opt: number, value: Buffer): number {
  return syscallRaw(SYS.setsockopt, [fd, level, opt, addressOf(value), value.length]);
}

/** getsockopt of a structure of at most size bytes, from amber's fd: its bytes, or -errno. */
export function getsockoptRaw(fd: number, level: number, opt: number, value: Buffer): { r: number; len: number } {
  const len = Buffer.alloc(4);
  len.writeUInt32LE(value.length, 0);
  const r = syscallRaw(SYS.getsockopt, [fd, level, opt, addressOf(value), addressOf(len)]);
  return { r, len: len.readUInt32LE(0) };
}

/** sendto must not fail silently: one that sent fewer bytes than asked is an error. */
export function sendDatagramOrThrow(fd: number, data: Buffer, to: Buffer | undefined, what: string): void {
  const n = sendDatagram(fd, data, to);
  if (n < 0) throw new KernelError('sendto', -n, undefined, what);
  if (n !== data.length) throw new KernelError('sendto', 90 /* EMSGSIZE */, undefined, `${what}: ${n} of ${data.length} bytes`);
}
