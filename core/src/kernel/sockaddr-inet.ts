import { addressOf, syscall } from './libc';
import { SYS } from './constants';
import { KernelError } from './errors';
import { AF } from './sockets';

// sockaddr_in / sockaddr_in6, and inet addresses in the form CRIU's images keep them: the
// address bytes in network order read as little-endian u32 words (one for IPv4, four for IPv6),
// which is what crit turns back into dotted or colon notation.

export const SOCKADDR_IN_SIZE = 16;
export const SOCKADDR_IN6_SIZE = 28;

/** An inet endpoint: family, the address's bytes in network order (4 or 16), port, IPv6 scope id. */
export interface InetEndpoint {
  family: number;
  addr: Buffer;
  port: number;
  scopeId?: number;
}

const addrLength = (family: number) => (family === AF.INET6 ? 16 : 4);

/** The bytes of an address as the image keeps them (u32 words) back to network order. */
export function addrFromWords(family: number, words: readonly number[]): Buffer {
  const out = Buffer.alloc(addrLength(family));
  words.slice(0, out.length / 4).forEach((w, i) => out.writeUInt32LE(w >>> 0, 4 * i));
  return out;
}

/** Network-order address bytes as the image's u32 words. */
export function addrToWords(addr: Buffer): number[] {
  const out: number[] = [];
  for (let i = 0; i + 4 <= addr.length; i += 4) out.push(addr.readUInt32LE(i));
  return out;
}

/** Address bytes as people write them: 10.0.0.1, fd00::1, ::ffff:127.0.0.1. */
export function formatInetAddr(family: number, addr: Buffer): string {
  if (family === AF.INET) return [...addr.subarray(0, 4)].join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(addr.readUInt16BE(i).toString(16));
  if (groups.slice(0, 5).every((g) => g === '0') && groups[5] === 'ffff') return `::ffff:${[...addr.subarray(12, 16)].join('.')}`;
  // the longest run of zero groups (two or more) becomes ::
  let best = { at: -1, len: 1 };
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > best.len) best = { at: i, len: j - i };
    i = j === i ? i + 1 : j;
  }
  if (best.at < 0) return groups.join(':');
  return `${groups.slice(0, best.at).join(':')}::${groups.slice(best.at + best.len).join(':')}`;
}

/** `addr:port`, with brackets around an IPv6 address. */
export function formatEndpoint(e: InetEndpoint): string {
  const a = formatInetAddr(e.family, e.addr);
  return e.family === AF.INET6 ? `[${a}]:${e.port}` : `${a}:${e.port}`;
}

/** An address in text (10.0.0.1, fd00::1, ::ffff:10.0.0.1) as network-order bytes. */
export function parseInetAddr(text: string): { family: number; addr: Buffer } {
  // required here, not at the top: node:net brings node's streams, and few commands parse an address
  const { isIPv4, isIPv6 } = require('node:net') as typeof import('node:net');
  if (isIPv4(text)) return { family: AF.INET, addr: Buffer.from(text.split('.').map(Number)) };
  if (!isIPv6(text)) throw new KernelError('inet address', 22 /* EINVAL */, undefined, text);
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  const s = dotted ? `${text.slice(0, -dotted[1].length)}0:0` : text;
  const [head, tail] = s.includes('::') ? s.split('::') : [s, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const addr = Buffer.alloc(16);
  groups.forEach((g, i) => addr.writeUInt16BE(parseInt(g, 16), 2 * i));
  if (dotted) Buffer.from(dotted[1].split('.').map(Number)).copy(addr, 12);
  return { family: AF.INET6, addr };
}

/** sockaddr_in or sockaddr_in6 for an endpoint; returns the buffer, whose length is the addrlen. */
export function sockaddrInet(e: InetEndpoint): Buffer {
  if (e.family === AF.INET) {
    const sa = Buffer.alloc(SOCKADDR_IN_SIZE);
    sa.writeUInt16LE(AF.INET, 0);
    sa.writeUInt16BE(e.port, 2);
    e.addr.copy(sa, 4, 0, 4);
    return sa;
  }
  const sa = Buffer.alloc(SOCKADDR_IN6_SIZE);
  sa.writeUInt16LE(AF.INET6, 0);
  sa.writeUInt16BE(e.port, 2);
  // flowinfo (4) stays 0
  e.addr.copy(sa, 8, 0, 16);
  sa.writeUInt32LE(e.scopeId ?? 0, 24);
  return sa;
}

/** An endpoint out of a sockaddr_in / sockaddr_in6 the kernel filled in. */
export function parseSockaddrInet(sa: Buffer): InetEndpoint {
  const family = sa.readUInt16LE(0);
  const port = sa.readUInt16BE(2);
  if (family === AF.INET) return { family, port, addr: Buffer.from(sa.subarray(4, 8)) };
  if (family === AF.INET6) return { family, port, addr: Buffer.from(sa.subarray(8, 24)), scopeId: sa.readUInt32LE(24) };
  throw new KernelError('inet address', 97 /* EAFNOSUPPORT */, undefined, `family ${family}`);
}

function endpointBy(nr: number, what: string, fd: number): InetEndpoint {
  const sa = Buffer.alloc(SOCKADDR_IN6_SIZE);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(sa.length, 0);
  syscall(what, nr, [fd, addressOf(sa), addressOf(len)], { detail: `fd ${fd}` });
  return parseSockaddrInet(sa);
}

/** The address an inet socket of amber's is bound to. */
export const getsocknameInet = (fd: number): InetEndpoint => endpointBy(SYS.getsockname, 'getsockname', fd);

/** The peer of a connected inet socket of amber's; undefined when it has none (ENOTCONN). */
export function getpeernameInet(fd: number): InetEndpoint | undefined {
  try {
    return endpointBy(SYS.getpeername, 'getpeername', fd);
  } catch (e) {
    if (e instanceof KernelError && e.errnoName === 'ENOTCONN') return undefined;
    throw e;
  }
}

export function bindInet(fd: number, e: InetEndpoint): void {
  const sa = sockaddrInet(e);
  syscall('bind', SYS.bind, [fd, addressOf(sa), sa.length], { detail: formatEndpoint(e) });
}

export function connectInet(fd: number, e: InetEndpoint): void {
  const sa = sockaddrInet(e);
  syscall('connect', SYS.connect, [fd, addressOf(sa), sa.length], { detail: formatEndpoint(e) });
}
