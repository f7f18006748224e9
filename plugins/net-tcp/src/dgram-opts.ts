import { readFileSync } from 'node:fs';
import {
  AF, AmberError, IPPROTO, SOL_SOCKET, addrFromWords, addressOf, addrToWords, errnoName, formatInetAddr, getsockoptInt, getsockoptRaw, setsockoptInt, setsockoptRaw,
  sockaddrInet, type FieldDifference,
} from '@amber/core';
import type { DgramSkEntry, McGroupEntry } from './generated';

// Multicast memberships and the options of datagram sockets, read from amber's copy and set on
// the socket amber makes at restore. The kernel lists no socket's memberships; it lists the
// groups each interface of the namespace has joined (/proc/PID/net/igmp, igmp6), and answers
// MCAST_MSFILTER for one group and interface only if this socket joined it: every candidate is
// asked.

const SOL_IP = 0;
const SOL_IPV6 = 41;
const SOL_RAW = 255;
const SOL_UDPLITE = 136;
const MCAST_JOIN_GROUP = 42;
const MCAST_MSFILTER = 48;
const MCAST_INCLUDE = 1;
const IP = { HDRINCL: 3, PKTINFO: 8, RECVERR: 11, MULTICAST_TTL: 33, MULTICAST_LOOP: 34 } as const;
const IPV6 = { MULTICAST_IF: 17, MULTICAST_HOPS: 18, MULTICAST_LOOP: 19, RECVERR: 25, RECVPKTINFO: 49 } as const;
const UDPLITE = { SEND_CSCOV: 10, RECV_CSCOV: 11 } as const;
const ICMP_FILTER = 1;
const SOL_ICMPV6 = 58;
const ICMP6_FILTER = 1;
/** struct group_filter up to gf_slist: interface u32, pad, sockaddr_storage group, fmode u32, numsrc u32. */
const GROUP_FILTER_SIZE = 144;
/** struct group_req: interface u32, pad, sockaddr_storage group. */
const GROUP_REQ_SIZE = 136;

export class DgramOptionError extends AmberError {}

/** Groups some interface of pid's network namespace has joined: [ifindex, address bytes]. */
function interfaceGroups(pid: number, family: number): [number, Buffer][] {
  const out: [number, Buffer][] = [];
  if (family === AF.INET) {
    let ifindex = 0;
    for (const line of readFileSync(`/proc/${pid}/net/igmp`, 'utf8').split('\n').slice(1)) {
      const dev = /^(\d+)\s+\S+\s*:/.exec(line);
      if (dev) ifindex = Number(dev[1]);
      const group = /^\s+([0-9A-F]{8})\s/.exec(line);
      if (group && ifindex) {
        const addr = Buffer.alloc(4);
        addr.writeUInt32LE(parseInt(group[1], 16), 0);
        out.push([ifindex, addr]);
      }
    }
  } else {
    for (const line of readFileSync(`/proc/${pid}/net/igmp6`, 'utf8').split('\n')) {
      const m = /^(\d+)\s+\S+\s+([0-9a-f]{32})\s/.exec(line);
      if (m) out.push([Number(m[1]), Buffer.from(m[2], 'hex')]);
    }
  }
  return out;
}

const levelOf = (family: number) => (family === AF.INET6 ? SOL_IPV6 : SOL_IP);

function groupStruct(size: number, family: number, ifindex: number, addr: Buffer): Buffer {
  const b = Buffer.alloc(size);
  b.writeUInt32LE(ifindex, 0);
  sockaddrInet({ family, addr, port: 0 }).copy(b, 8);
  return b;
}

/** The groups socket fd (of pid's namespace) has joined; a source-filtered membership is refused. */
export function readMemberships(pid: number, fd: number, family: number, where: string): McGroupEntry[] {
  const out: McGroupEntry[] = [];
  const seen = new Set<string>();
  for (const [ifindex, addr] of interfaceGroups(pid, family)) {
    const key = `${ifindex}/${addr.toString('hex')}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const gf = groupStruct(GROUP_FILTER_SIZE, family, ifindex, addr);
    const { r } = getsockoptRaw(fd, levelOf(family), MCAST_MSFILTER, gf);
    if (r < 0) continue;
    if (gf.readUInt32LE(136) === MCAST_INCLUDE || gf.readUInt32LE(140) > 0) {
      throw new DgramOptionError(`${where}: its membership of ${formatInetAddr(family, addr)} on interface ${ifindex} filters sources, which amber does not restore; nothing was changed and the process keeps running`);
    }
    out.push({ ifindex, addr: addrToWords(addr) });
  }
  return out;
}

export function joinMemberships(fd: number, family: number, groups: readonly McGroupEntry[], where: string): void {
  for (const g of groups) {
    const addr = addrFromWords(family, g.addr);
    const r = setsockoptRaw(fd, levelOf(family), MCAST_JOIN_GROUP, groupStruct(GROUP_REQ_SIZE, family, g.ifindex, addr));
    if (r < 0) throw new DgramOptionError(`${where}: cannot join multicast group ${formatInetAddr(family, addr)} on interface ${g.ifindex} again: ${errnoName(-r)}`);
  }
}

const int = (fd: number, level: number, opt: number, name: string) => getsockoptInt(fd, level, opt, `getsockopt(${name})`);

/** Datagram options and memberships of amber's copy of a socket of pid's namespace. */
export function readDgramOptions(pid: number, fd: number, family: number, protocol: number, raw: boolean, where: string): DgramSkEntry {
  const v6 = family === AF.INET6;
  const e: DgramSkEntry = { mcGroups: readMemberships(pid, fd, family, where), peerAddr: [] };
  e.mcTtl = v6 ? int(fd, SOL_IPV6, IPV6.MULTICAST_HOPS, 'IPV6_MULTICAST_HOPS') : int(fd, SOL_IP, IP.MULTICAST_TTL, 'IP_MULTICAST_TTL');
  e.mcLoop = (v6 ? int(fd, SOL_IPV6, IPV6.MULTICAST_LOOP, 'IPV6_MULTICAST_LOOP') : int(fd, SOL_IP, IP.MULTICAST_LOOP, 'IP_MULTICAST_LOOP')) !== 0;
  if (v6) e.mcIfindex = int(fd, SOL_IPV6, IPV6.MULTICAST_IF, 'IPV6_MULTICAST_IF');
  e.pktinfo = (v6 ? int(fd, SOL_IPV6, IPV6.RECVPKTINFO, 'IPV6_RECVPKTINFO') : int(fd, SOL_IP, IP.PKTINFO, 'IP_PKTINFO')) !== 0;
  e.recverr = (v6 ? int(fd, SOL_IPV6, IPV6.RECVERR, 'IPV6_RECVERR') : int(fd, SOL_IP, IP.RECVERR, 'IP_RECVERR')) !== 0;
  if (protocol === IPPROTO.UDPLITE) {
    e.sendCscov = int(fd, SOL_UDPLITE, UDPLITE.SEND_CSCOV, 'UDPLITE_SEND_CSCOV');
    e.recvCscov = int(fd, SOL_UDPLITE, UDPLITE.RECV_CSCOV, 'UDPLITE_RECV_CSCOV');
  }
  if (raw && !v6) {
    e.hdrincl = int(fd, SOL_IP, IP.HDRINCL, 'IP_HDRINCL') !== 0;
    if (protocol === IPPROTO.ICMP) e.icmpFilter = int(fd, SOL_RAW, ICMP_FILTER, 'ICMP_FILTER') >>> 0;
  }
  if (raw && v6 && protocol === IPPROTO.ICMPV6) {
    const filter = Buffer.alloc(32);
    const { r, len } = getsockoptRaw(fd, SOL_ICMPV6, ICMP6_FILTER, filter);
    if (r < 0) throw new DgramOptionError(`${where}: getsockopt(ICMP6_FILTER) failed: ${errnoName(-r)}`);
    // all clear passes every type, as a new socket does
    if (filter.subarray(0, len).some((b) => b !== 0)) e.icmp6Filter = Buffer.from(filter.subarray(0, len));
  }
  return e;
}

/** Sets them on the socket amber made (in the task's namespace, bound). */
export function applyDgramOptions(fd: number, family: number, e: DgramSkEntry, where: string): void {
  const v6 = family === AF.INET6;
  const set = (level: number, opt: number, value: number, name: string) => setsockoptInt(fd, level, opt, value, `setsockopt(${name}) for ${where}`);
  if (e.mcTtl !== undefined && e.mcTtl !== 1) v6 ? set(SOL_IPV6, IPV6.MULTICAST_HOPS, e.mcTtl, 'IPV6_MULTICAST_HOPS') : set(SOL_IP, IP.MULTICAST_TTL, e.mcTtl, 'IP_MULTICAST_TTL');
  if (e.mcLoop === false) v6 ? set(SOL_IPV6, IPV6.MULTICAST_LOOP, 0, 'IPV6_MULTICAST_LOOP') : set(SOL_IP, IP.MULTICAST_LOOP, 0, 'IP_MULTICAST_LOOP');
  if (v6 && e.mcIfindex) set(SOL_IPV6, IPV6.MULTICAST_IF, e.mcIfindex, 'IPV6_MULTICAST_IF');
  if (e.pktinfo) v6 ? set(SOL_IPV6, IPV6.RECVPKTINFO, 1, 'IPV6_RECVPKTINFO') : set(SOL_IP, IP.PKTINFO, 1, 'IP_PKTINFO');
  if (e.recverr) v6 ? set(SOL_IPV6, IPV6.RECVERR, 1, 'IPV6_RECVERR') : set(SOL_IP, IP.RECVERR, 1, 'IP_RECVERR');
  if (e.sendCscov) set(SOL_UDPLITE, UDPLITE.SEND_CSCOV, e.sendCscov, 'UDPLITE_SEND_CSCOV');
  if (e.recvCscov) set(SOL_UDPLITE, UDPLITE.RECV_CSCOV, e.recvCscov, 'UDPLITE_RECV_CSCOV');
  if (e.hdrincl) set(SOL_IP, IP.HDRINCL, 1, 'IP_HDRINCL');
  if (e.icmpFilter) set(SOL_RAW, ICMP_FILTER, e.icmpFilter | 0, 'ICMP_FILTER');
  if (e.icmp6Filter) {
    const r = setsockoptRaw(fd, SOL_ICMPV6, ICMP6_FILTER, e.icmp6Filter);
    if (r < 0) throw new DgramOptionError(`${where}: cannot set ICMP6_FILTER again: ${errnoName(-r)}`);
  }
  joinMemberships(fd, family, e.mcGroups, where);
}

const SO_ATTACH_FILTER = 26;

/** A classic BPF program (one u64 per instruction, as socketFilterOf reads it) attached to amber's fd. */
export function attachFilter(fd: number, filter: readonly bigint[], where: string): void {
  if (!filter.length) return;
  const prog = Buffer.alloc(filter.length * 8);
  filter.forEach((insn, i) => prog.writeBigUInt64LE(insn, i * 8));
  // struct sock_fprog: len u16, (pad), pointer to the instructions
  const fprog = Buffer.alloc(16);
  fprog.writeUInt16LE(filter.length, 0);
  fprog.writeBigUInt64LE(addressOf(prog), 8);
  const r = setsockoptRaw(fd, SOL_SOCKET, SO_ATTACH_FILTER, fprog);
  if (r < 0) throw new DgramOptionError(`${where}: cannot attach its socket filter (${filter.length} BPF instructions) again: ${errnoName(-r)}`);
}

export function compareFilter(live: readonly bigint[], dumped: readonly bigint[]): FieldDifference[] {
  const text = (f: readonly bigint[]) => `${f.length} BPF instructions${f.length ? ` (${f.map((i) => i.toString(16)).join(' ')})` : ''}`;
  return live.join() === dumped.join() ? [] : [{ what: 'socket filter', expected: text(dumped), actual: text(live) }];
}

export function compareDgramOptions(live: DgramSkEntry, e: DgramSkEntry, family: number): FieldDifference[] {
  const out: FieldDifference[] = [];
  const diff = (what: string, a: unknown, b: unknown) => void (String(a ?? '') !== String(b ?? '') && out.push({ what, expected: String(a ?? ''), actual: String(b ?? '') }));
  const groups = (l: McGroupEntry[]) => l.map((g) => `${formatInetAddr(family, addrFromWords(family, g.addr))}%${g.ifindex}`).sort().join(' ');
  diff('multicast groups', groups(e.mcGroups), groups(live.mcGroups));
  for (const k of ['mcTtl', 'mcLoop', 'mcIfindex', 'pktinfo', 'recverr', 'sendCscov', 'recvCscov', 'hdrincl', 'icmpFilter'] as const) diff(k, e[k], live[k]);
  diff('ICMP6_FILTER', e.icmp6Filter?.toString('hex'), live.icmp6Filter?.toString('hex'));
  return out;
}
