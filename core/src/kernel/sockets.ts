import { addressOf, syscall, syscallRaw } from './libc';
import { SYS } from './constants';
import { KernelError } from './errors';

// Sockets from amber's own process, and the struct layouts (sockaddr_un, msghdr, cmsghdr) that
// injected calls stage into a task.

export const AF = { UNIX: 1, INET: 2, NETLINK: 16, INET6: 10 } as const;
export const SOCK = { STREAM: 1, DGRAM: 2, SEQPACKET: 5, NONBLOCK: 0o4000, CLOEXEC: 0o2000000 } as const;
export const SOL_SOCKET = 1;
export const SO = {
  TYPE: 3, SNDBUF: 7, RCVBUF: 8, PASSCRED: 16, PEERCRED: 17, RCVLOWAT: 18, ACCEPTCONN: 30,
  SNDBUFFORCE: 32, RCVBUFFORCE: 33, PASSSEC: 34, PEEK_OFF: 42,
} as const;
export const MSG = { PEEK: 2, CTRUNC: 8, TRUNC: 0x20, DONTWAIT: 0x40, NOSIGNAL: 0x4000, CMSG_CLOEXEC: 0x40000000 } as const;
export const SCM = { RIGHTS: 1, CREDENTIALS: 2, SECURITY: 3 } as const;
export const SHUT = { RD: 0, WR: 1, RDWR: 2 } as const;
/** sk_shutdown bits as sock_diag reports them. */
export const SHUTDOWN_MASK = { RCV: 1, SEND: 2 } as const;

const SUN_PATH = 108;
export const SOCKADDR_UN_SIZE = 2 + SUN_PATH;

/**
 * sockaddr_un for a unix name: a path, or an abstract name (first byte NUL, the rest exactly as
 * long as it was bound: abstract names are not NUL-terminated and their length is part of them).
 * Returns the buffer and the address length to pass.
 */
export function sockaddrUn(name: Buffer): { addr: Buffer; len: number } {
  if (name.length > SUN_PATH) throw new KernelError('sockaddr_un', 36 /* ENAMETOOLONG */, undefined, `name of ${name.length} bytes`);
  const addr = Buffer.alloc(SOCKADDR_UN_SIZE);
  addr.writeUInt16LE(AF.UNIX, 0);
  name.copy(addr, 2);
  const abstract = name.length > 0 && name[0] === 0;
  return { addr, len: 2 + name.length + (abstract || name.length === 0 ? 0 : 1) };
}

/** The name in a sockaddr_un of length len (a path loses its terminating NUL). */
export function nameOfSockaddrUn(addr: Buffer, len: number): Buffer {
  if (len <= 2) return Buffer.alloc(0);
  const raw = addr.subarray(2, len);
  if (raw[0] === 0) return Buffer.from(raw);
  const nul = raw.indexOf(0);
  return Buffer.from(nul < 0 ? raw : raw.subarray(0, nul));
}

/** A unix name for people: a path as it is, an abstract one as `@name`. */
export function describeUnixName(name: Buffer): string {
  if (name.length === 0) return '(unnamed)';
  return name[0] === 0 ? `@${name.subarray(1).toString('latin1').replace(/\0/g, '@')}` : name.toString();
}

export function socket(domain: number, type: number, protocol = 0): number {
  return syscall('socket', SYS.socket, [domain, type, protocol]);
}

export function socketpair(domain: number, type: number, protocol = 0): [number, number] {
  const fds = Buffer.alloc(8);
  syscall('socketpair', SYS.socketpair, [domain, type, protocol, addressOf(fds)]);
  return [fds.readInt32LE(0), fds.readInt32LE(4)];
}

export function bindUnix(fd: number, name: Buffer): void {
  const { addr, len } = sockaddrUn(name);
  syscall('bind', SYS.bind, [fd, addressOf(addr), len], { detail: describeUnixName(name) });
}

export function listen(fd: number, backlog: number): void {
  syscall('listen', SYS.listen, [fd, backlog], { detail: `fd ${fd}` });
}

export function connectUnix(fd: number, name: Buffer): void {
  const { addr, len } = sockaddrUn(name);
  syscall('connect', SYS.connect, [fd, addressOf(addr), len], { detail: describeUnixName(name) });
}

export function accept4(fd: number, flags = 0): number {
  return syscall('accept4', SYS.accept4, [fd, 0, 0, flags], { detail: `fd ${fd}` });
}

export function shutdown(fd: number, how: number): void {
  syscall('shutdown', SYS.shutdown, [fd, how], { detail: `fd ${fd}` });
}

export function getsockoptInt(fd: number, level: number, opt: number, what = `getsockopt ${opt}`): number {
  const v = Buffer.alloc(4);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(4, 0);
  syscall(what, SYS.getsockopt, [fd, level, opt, addressOf(v), addressOf(len)], { detail: `fd ${fd}` });
  return v.readInt32LE(0);
}

export function setsockoptInt(fd: number, level: number, opt: number, value: number, what = `setsockopt ${opt}`): void {
  const v = Buffer.alloc(4);
  v.writeInt32LE(value, 0);
  syscall(what, SYS.setsockopt, [fd, level, opt, addressOf(v), 4], { detail: `fd ${fd}` });
}

function unixNameBy(nr: number, what: string, fd: number): Buffer {
  const addr = Buffer.alloc(SOCKADDR_UN_SIZE);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(SOCKADDR_UN_SIZE, 0);
  syscall(what, nr, [fd, addressOf(addr), addressOf(len)], { detail: `fd ${fd}` });
  return nameOfSockaddrUn(addr, len.readUInt32LE(0));
}

/** The name a unix socket is bound to (empty: unbound). */
export const getsocknameUnix = (fd: number): Buffer => unixNameBy(SYS.getsockname, 'getsockname', fd);

/** The name of a unix socket's peer; undefined when it has none (ENOTCONN). */
export function getpeernameUnix(fd: number): Buffer | undefined {
  try {
    return unixNameBy(SYS.getpeername, 'getpeername', fd);
  } catch (e) {
    if (e instanceof KernelError && e.errnoName === 'ENOTCONN') return undefined;
    throw e;
  }
}

export interface UnixCredentials {
  pid: number;
  uid: number;
  gid: number;
}

/** One message as recvmsg returned it: data, sender's name, fds passed and credentials. */
export interface ReceivedMessage {
  data: Buffer;
  /** Length of the whole record (MSG_TRUNC): more than data.length when the buffer was short. */
  length: number;
  /** MSG_TRUNC / MSG_CTRUNC as the kernel set them. */
  flags: number;
  name: Buffer;
  fds: number[];
  creds?: UnixCredentials;
}

const CMSG_HDR = 16;
const align8 = (n: number) => (n + 7) & ~7;

/** cmsghdr sequence for SCM_RIGHTS fds and SCM_CREDENTIALS creds (either may be absent). */
export function encodeControl(fds: number[], creds?: UnixCredentials): Buffer {
  const parts: Buffer[] = [];
  if (fds.length) {
    const c = Buffer.alloc(align8(CMSG_HDR + 4 * fds.length));
    c.writeBigUInt64LE(BigInt(CMSG_HDR + 4 * fds.length), 0);
    c.writeInt32LE(SOL_SOCKET, 8);
    c.writeInt32LE(SCM.RIGHTS, 12);
    fds.forEach((fd, i) => c.writeInt32LE(fd, CMSG_HDR + 4 * i));
    parts.push(c);
  }
  if (creds) {
    const c = Buffer.alloc(align8(CMSG_HDR + 12));
    c.writeBigUInt64LE(BigInt(CMSG_HDR + 12), 0);
    c.writeInt32LE(SOL_SOCKET, 8);
    c.writeInt32LE(SCM.CREDENTIALS, 12);
    c.writeUInt32LE(creds.pid, 16);
    c.writeUInt32LE(creds.uid, 20);
    c.writeUInt32LE(creds.gid, 24);
    parts.push(c);
  }
  return Buffer.concat(parts);
}

function decodeControl(control: Buffer, len: number): { fds: number[]; creds?: UnixCredentials } {
  const fds: number[] = [];
  let creds: UnixCredentials | undefined;
  for (let at = 0; at + CMSG_HDR <= len;) {
    const clen = Number(control.readBigUInt64LE(at));
    if (clen < CMSG_HDR) break;
    const level = control.readInt32LE(at + 8);
    const type = control.readInt32LE(at + 12);
    if (level === SOL_SOCKET && type === SCM.RIGHTS) {
      for (let p = at + CMSG_HDR; p + 4 <= at + clen; p += 4) fds.push(control.readInt32LE(p));
    } else if (level === SOL_SOCKET && type === SCM.CREDENTIALS) {
      creds = { pid: control.readUInt32LE(at + 16), uid: control.readUInt32LE(at + 20), gid: control.readUInt32LE(at + 24) };
    }
    at += align8(clen);
  }
  return { fds, creds };
}

/**
 * msghdr + iovec + name + control laid out in one buffer that will sit at address `base` (in
 * amber or in a task): the pointers inside are base-relative. `data` is copied in for sendmsg,
 * or `room` bytes are left for recvmsg.
 */
export function layoutMsghdr(base: bigint, opts: { data?: Buffer; room?: number; name?: Buffer; control?: Buffer; controlRoom?: number }): {
  buf: Buffer; dataAt: number; nameAt: number; controlAt: number;
} {
  const dataLen = opts.data?.length ?? opts.room ?? 0;
  const name = opts.name && opts.name.length ? sockaddrUn(opts.name) : undefined;
  const controlLen = opts.control?.length ?? opts.controlRoom ?? 0;
  const nameAt = 80;
  const nameLen = name ? name.len : opts.room !== undefined ? SOCKADDR_UN_SIZE : 0;
  const controlAt = align8(nameAt + SOCKADDR_UN_SIZE);
  const dataAt = align8(controlAt + controlLen);
  const buf = Buffer.alloc(dataAt + dataLen);
  // struct msghdr: name, namelen, iov, iovlen, control, controllen, flags (56 bytes); iovec at 56
  buf.writeBigUInt64LE(nameLen ? base + BigInt(nameAt) : 0n, 0);
  buf.writeUInt32LE(nameLen, 8);
  buf.writeBigUInt64LE(base + 56n, 16);
  buf.writeBigUInt64LE(1n, 24);
  buf.writeBigUInt64LE(controlLen ? base + BigInt(controlAt) : 0n, 32);
  buf.writeBigUInt64LE(BigInt(controlLen), 40);
  buf.writeBigUInt64LE(base + BigInt(dataAt), 56);
  buf.writeBigUInt64LE(BigInt(dataLen), 64);
  if (name) name.addr.copy(buf, nameAt);
  opts.control?.copy(buf, controlAt);
  opts.data?.copy(buf, dataAt);
  return { buf, dataAt, nameAt, controlAt };
}

/** After recvmsg into a layoutMsghdr buffer: what it received (n = recvmsg's result). */
export function parseReceived(buf: Buffer, n: number, room: number, at: { dataAt: number; nameAt: number; controlAt: number }): ReceivedMessage {
  const nameLen = buf.readUInt32LE(8);
  const controlLen = Number(buf.readBigUInt64LE(40));
  const flags = buf.readInt32LE(48);
  const { fds, creds } = decodeControl(buf.subarray(at.controlAt), controlLen);
  return {
    data: Buffer.from(buf.subarray(at.dataAt, at.dataAt + Math.min(n, room))),
    length: n,
    flags,
    name: nameOfSockaddrUn(buf.subarray(at.nameAt), nameLen),
    fds,
    creds,
  };
}

/**
 * recvmsg in amber. Returns undefined on EAGAIN (nothing queued with MSG_DONTWAIT). Passed fds,
 * if any, are installed in amber (close them).
 */
export function recvmsg(fd: number, room: number, flags: number, controlRoom = 4096): ReceivedMessage | undefined {
  // the layout holds its own address: sized first, then built in place
  const size = layoutMsghdr(0n, { room, controlRoom }).buf.length;
  const buf = Buffer.alloc(size);
  const laid = layoutMsghdr(addressOf(buf), { room, controlRoom });
  laid.buf.copy(buf);
  const n = syscallRaw(SYS.recvmsg, [fd, addressOf(buf), flags]);
  if (n === -11 /* EAGAIN */) return undefined;
  if (n < 0) throw new KernelError('recvmsg', -n, undefined, `fd ${fd}`);
  return parseReceived(buf, n, room, laid);
}

/** sendmsg in amber; returns bytes sent. */
export function sendmsg(fd: number, data: Buffer, opts: { name?: Buffer; fds?: number[]; creds?: UnixCredentials; flags?: number } = {}): number {
  const control = encodeControl(opts.fds ?? [], opts.creds);
  const size = layoutMsghdr(0n, { data, name: opts.name, control }).buf.length;
  const buf = Buffer.alloc(size);
  layoutMsghdr(addressOf(buf), { data, name: opts.name, control }).buf.copy(buf);
  return syscall('sendmsg', SYS.sendmsg, [fd, addressOf(buf), opts.flags ?? 0], { detail: `fd ${fd}` });
}

/** getsockopt of a structure (struct timeval ...): the bytes the kernel wrote. */
export function getsockoptBytes(fd: number, level: number, opt: number, size: number, what = `getsockopt ${opt}`): Buffer {
  const v = Buffer.alloc(size);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(size, 0);
  syscall(what, SYS.getsockopt, [fd, level, opt, addressOf(v), addressOf(len)], { detail: `fd ${fd}` });
  return v.subarray(0, len.readUInt32LE(0));
}

/** SO_RCVTIMEO / SO_SNDTIMEO in their struct timeval form (the _OLD numbers, 64-bit fields on x86-64). */
export const SO_TIMEO = { RCV: 20, SND: 21 } as const;
