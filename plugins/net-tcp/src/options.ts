import {
  SOL_SOCKET, TCP, getsockoptBytes, getsockoptInt, setsockoptInt, tcpGet, tcpSet, AF, addressOf, SYS, syscall,
  type FieldDifference,
} from '@amber/core';
import type { SkOptsEntry } from '@amber/core';
import type { IpOptsEntry, TcpSockOptsEntry } from './generated';

// Options every inet socket carries, read from and set on amber's own copy of the socket.

const SO = {
  REUSEADDR: 2, DONTROUTE: 5, BROADCAST: 6, SNDBUF: 7, RCVBUF: 8, KEEPALIVE: 9, OOBINLINE: 10, PRIORITY: 12, LINGER: 13,
  REUSEPORT: 15, RCVLOWAT: 18, RCVTIMEO: 20, SNDTIMEO: 21, BINDTODEVICE: 25, MARK: 36, SNDBUFFORCE: 32, RCVBUFFORCE: 33, BUF_LOCK: 72,
} as const;
const SOL_IP = 0;
const IP = { TOS: 1, FREEBIND: 15 } as const;
const SOL_IPV6 = 41;
const IPV6_V6ONLY = 26;
/** SO_BUF_LOCK bits: the size was set by the program (else the kernel tunes it). */
const BUF_LOCK = { SND: 1, RCV: 2 } as const;

export interface InetOptions {
  opts: SkOptsEntry;
  ipOpts: IpOptsEntry;
  v6only?: boolean;
  tcpOpts?: TcpSockOptsEntry;
}

const get = (fd: number, opt: number, name: string) => getsockoptInt(fd, SOL_SOCKET, opt, `getsockopt(${name})`);

function timeval(fd: number, opt: number, name: string): [bigint, bigint] {
  const b = getsockoptBytes(fd, SOL_SOCKET, opt, 16, `getsockopt(${name})`);
  return [b.readBigInt64LE(0), b.readBigInt64LE(8)];
}

function boundDevice(fd: number): string | undefined {
  const b = getsockoptBytes(fd, SOL_SOCKET, SO.BINDTODEVICE, 16, 'getsockopt(SO_BINDTODEVICE)');
  const name = b.subarray(0, b.indexOf(0) < 0 ? b.length : b.indexOf(0)).toString();
  return name || undefined;
}

/** Options of an inet socket (amber's copy of it); tcp adds TCP's own. */
export function readInetOptions(fd: number, family: number, tcp: boolean): InetOptions {
  const [sndSec, sndUsec] = timeval(fd, SO.SNDTIMEO, 'SO_SNDTIMEO');
  const [rcvSec, rcvUsec] = timeval(fd, SO.RCVTIMEO, 'SO_RCVTIMEO');
  const linger = getsockoptBytes(fd, SOL_SOCKET, SO.LINGER, 8, 'getsockopt(SO_LINGER)');
  const opts: SkOptsEntry = {
    soSndbuf: get(fd, SO.SNDBUF, 'SO_SNDBUF'), soRcvbuf: get(fd, SO.RCVBUF, 'SO_RCVBUF'),
    soSndTmoSec: sndSec, soSndTmoUsec: sndUsec, soRcvTmoSec: rcvSec, soRcvTmoUsec: rcvUsec,
    reuseaddr: get(fd, SO.REUSEADDR, 'SO_REUSEADDR') !== 0, soReuseport: get(fd, SO.REUSEPORT, 'SO_REUSEPORT') !== 0,
    soPriority: get(fd, SO.PRIORITY, 'SO_PRIORITY'), soRcvlowat: get(fd, SO.RCVLOWAT, 'SO_RCVLOWAT'), soMark: get(fd, SO.MARK, 'SO_MARK'),
    soDontroute: get(fd, SO.DONTROUTE, 'SO_DONTROUTE') !== 0, soBroadcast: get(fd, SO.BROADCAST, 'SO_BROADCAST') !== 0,
    soKeepalive: get(fd, SO.KEEPALIVE, 'SO_KEEPALIVE') !== 0, soOobinline: get(fd, SO.OOBINLINE, 'SO_OOBINLINE'),
    soBoundDev: boundDevice(fd), soFilter: [], soBufLock: get(fd, SO.BUF_LOCK, 'SO_BUF_LOCK'),
  };
  if (linger.readInt32LE(0)) opts.soLinger = linger.readInt32LE(4);
  const out: InetOptions = { opts, ipOpts: {} };
  if (family === AF.INET) {
    out.ipOpts.tos = getsockoptInt(fd, SOL_IP, IP.TOS, 'getsockopt(IP_TOS)');
    out.ipOpts.freebind = getsockoptInt(fd, SOL_IP, IP.FREEBIND, 'getsockopt(IP_FREEBIND)') !== 0;
  } else {
    out.v6only = getsockoptInt(fd, SOL_IPV6, IPV6_V6ONLY, 'getsockopt(IPV6_V6ONLY)') !== 0;
  }
  if (tcp) {
    opts.tcpKeepidle = tcpGet(fd, TCP.KEEPIDLE, 'TCP_KEEPIDLE');
    opts.tcpKeepintvl = tcpGet(fd, TCP.KEEPINTVL, 'TCP_KEEPINTVL');
    opts.tcpKeepcnt = tcpGet(fd, TCP.KEEPCNT, 'TCP_KEEPCNT');
    out.tcpOpts = { nodelay: tcpGet(fd, TCP.NODELAY, 'TCP_NODELAY') !== 0, cork: tcpGet(fd, TCP.CORK, 'TCP_CORK') !== 0, userTimeout: tcpGet(fd, TCP.USER_TIMEOUT, 'TCP_USER_TIMEOUT') };
  }
  return out;
}

const set = (fd: number, level: number, opt: number, value: number, name: string) => setsockoptInt(fd, level, opt, value, `setsockopt(${name})`);

function setBytes(fd: number, level: number, opt: number, value: Buffer, name: string): void {
  syscall(`setsockopt(${name})`, SYS.setsockopt, [fd, level, opt, addressOf(value), value.length], { detail: `fd ${fd}` });
}

/** What must be set before bind(): the device, IPV6_V6ONLY, address reuse (for the restore: always on, put back by applyReuse). */
export function applyBeforeBind(fd: number, family: number, o: InetOptions): void {
  if (o.opts.soBoundDev) setBytes(fd, SOL_SOCKET, SO.BINDTODEVICE, Buffer.from(`${o.opts.soBoundDev}\0`), 'SO_BINDTODEVICE');
  if (family === AF.INET6) set(fd, SOL_IPV6, IPV6_V6ONLY, o.v6only ? 1 : 0, 'IPV6_V6ONLY');
  if (family === AF.INET && o.ipOpts.freebind) set(fd, SOL_IP, IP.FREEBIND, 1, 'IP_FREEBIND');
  set(fd, SOL_SOCKET, SO.REUSEADDR, 1, 'SO_REUSEADDR');
  if (o.opts.soReuseport) set(fd, SOL_SOCKET, SO.REUSEPORT, 1, 'SO_REUSEPORT');
}

/** The dumped SO_REUSEADDR back (the restore bound with it on; leaving TCP repair mode also clears it). */
export function applyReuse(fd: number, o: InetOptions): void {
  set(fd, SOL_SOCKET, SO.REUSEADDR, o.opts.reuseaddr ? 1 : 0, 'SO_REUSEADDR');
}

function setTimeval(fd: number, opt: number, sec: bigint, usec: bigint, name: string): void {
  const b = Buffer.alloc(16);
  b.writeBigInt64LE(sec, 0);
  b.writeBigInt64LE(usec, 8);
  setBytes(fd, SOL_SOCKET, opt, b, name);
}

/** Everything else, once the socket is bound (and connected or listening). */
export function applyInetOptions(fd: number, family: number, o: InetOptions): void {
  const s = o.opts;
  // the kernel doubles what it is given (room for its bookkeeping): a locked size goes back halved
  if ((s.soBufLock ?? 0) & BUF_LOCK.SND) set(fd, SOL_SOCKET, SO.SNDBUFFORCE, s.soSndbuf / 2, 'SO_SNDBUFFORCE');
  if ((s.soBufLock ?? 0) & BUF_LOCK.RCV) set(fd, SOL_SOCKET, SO.RCVBUFFORCE, s.soRcvbuf / 2, 'SO_RCVBUFFORCE');
  if (s.soSndTmoSec || s.soSndTmoUsec) setTimeval(fd, SO.SNDTIMEO, s.soSndTmoSec, s.soSndTmoUsec, 'SO_SNDTIMEO');
  if (s.soRcvTmoSec || s.soRcvTmoUsec) setTimeval(fd, SO.RCVTIMEO, s.soRcvTmoSec, s.soRcvTmoUsec, 'SO_RCVTIMEO');
  // IP_TOS also sets the priority: the dumped SO_PRIORITY comes after it
  if (family === AF.INET && o.ipOpts.tos) set(fd, SOL_IP, IP.TOS, o.ipOpts.tos, 'IP_TOS');
  if (s.soPriority) set(fd, SOL_SOCKET, SO.PRIORITY, s.soPriority, 'SO_PRIORITY');
  if (s.soRcvlowat !== undefined && s.soRcvlowat !== 1) set(fd, SOL_SOCKET, SO.RCVLOWAT, s.soRcvlowat, 'SO_RCVLOWAT');
  if (s.soMark) set(fd, SOL_SOCKET, SO.MARK, s.soMark, 'SO_MARK');
  if (s.soDontroute) set(fd, SOL_SOCKET, SO.DONTROUTE, 1, 'SO_DONTROUTE');
  if (s.soBroadcast) set(fd, SOL_SOCKET, SO.BROADCAST, 1, 'SO_BROADCAST');
  if (s.soOobinline) set(fd, SOL_SOCKET, SO.OOBINLINE, 1, 'SO_OOBINLINE');
  if (s.soKeepalive) set(fd, SOL_SOCKET, SO.KEEPALIVE, 1, 'SO_KEEPALIVE');
  if (s.soLinger !== undefined) {
    const l = Buffer.alloc(8);
    l.writeInt32LE(1, 0);
    l.writeInt32LE(s.soLinger, 4);
    setBytes(fd, SOL_SOCKET, SO.LINGER, l, 'SO_LINGER');
  }
  if (o.tcpOpts) {
    if (s.tcpKeepidle) tcpSet(fd, TCP.KEEPIDLE, s.tcpKeepidle, 'TCP_KEEPIDLE');
    if (s.tcpKeepintvl) tcpSet(fd, TCP.KEEPINTVL, s.tcpKeepintvl, 'TCP_KEEPINTVL');
    if (s.tcpKeepcnt) tcpSet(fd, TCP.KEEPCNT, s.tcpKeepcnt, 'TCP_KEEPCNT');
    if (o.tcpOpts.nodelay) tcpSet(fd, TCP.NODELAY, 1, 'TCP_NODELAY');
    if (o.tcpOpts.cork) tcpSet(fd, TCP.CORK, 1, 'TCP_CORK');
    if (o.tcpOpts.userTimeout) tcpSet(fd, TCP.USER_TIMEOUT, o.tcpOpts.userTimeout, 'TCP_USER_TIMEOUT');
  }
}

/** Options that differ between a live socket and its entry (buffer sizes only where the program set them). */
export function compareInetOptions(live: InetOptions, dumped: InetOptions): FieldDifference[] {
  const out: FieldDifference[] = [];
  const diff = (what: string, e: unknown, a: unknown) => void (String(e) !== String(a) && out.push({ what, expected: String(e), actual: String(a) }));
  const [l, d] = [live.opts, dumped.opts];
  diff('SO_REUSEADDR', d.reuseaddr, l.reuseaddr);
  diff('SO_REUSEPORT', d.soReuseport, l.soReuseport);
  diff('SO_KEEPALIVE', d.soKeepalive, l.soKeepalive);
  diff('SO_PRIORITY', d.soPriority, l.soPriority);
  diff('SO_MARK', d.soMark, l.soMark);
  diff('SO_LINGER', d.soLinger ?? 'off', l.soLinger ?? 'off');
  diff('SO_BINDTODEVICE', d.soBoundDev ?? '', l.soBoundDev ?? '');
  diff('SO_SNDTIMEO', `${d.soSndTmoSec}.${d.soSndTmoUsec}`, `${l.soSndTmoSec}.${l.soSndTmoUsec}`);
  diff('SO_RCVTIMEO', `${d.soRcvTmoSec}.${d.soRcvTmoUsec}`, `${l.soRcvTmoSec}.${l.soRcvTmoUsec}`);
  if ((d.soBufLock ?? 0) & BUF_LOCK.SND) diff('SO_SNDBUF', d.soSndbuf, l.soSndbuf);
  if ((d.soBufLock ?? 0) & BUF_LOCK.RCV) diff('SO_RCVBUF', d.soRcvbuf, l.soRcvbuf);
  diff('IP_TOS', dumped.ipOpts.tos ?? '', live.ipOpts.tos ?? '');
  diff('IPV6_V6ONLY', dumped.v6only ?? '', live.v6only ?? '');
  if (dumped.tcpOpts && live.tcpOpts) {
    diff('TCP_NODELAY', dumped.tcpOpts.nodelay, live.tcpOpts.nodelay);
    diff('TCP_CORK', dumped.tcpOpts.cork, live.tcpOpts.cork);
    diff('TCP_USER_TIMEOUT', dumped.tcpOpts.userTimeout, live.tcpOpts.userTimeout);
    diff('TCP_KEEPIDLE', d.tcpKeepidle, l.tcpKeepidle);
    diff('TCP_KEEPINTVL', d.tcpKeepintvl, l.tcpKeepintvl);
    diff('TCP_KEEPCNT', d.tcpKeepcnt, l.tcpKeepcnt);
  }
  return out;
}
