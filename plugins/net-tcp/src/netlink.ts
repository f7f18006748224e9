import {
  AF, AmberError, FdType, NDIAG_FLAG, NETLINK_OPT, NETLINK_STATE, NO_FOWN, O, SOL_NETLINK, close, errnoName, getsockoptInt,
  netlinkSockets, setStatusFlags, takeFd,
  type DumpContext, type DumpTask, type FdResource, type FieldDifference, type FileKind, type NetlinkDiagRecord,
  type RemoteSyscall, type RestoreContext, type RestoreTask,
} from '@amber/core';
import * as path from 'node:path';
import type { NetlinkSkEntry, NlSkOptsEntry } from './generated';
import { applySocketOptions, compareSocketOptions, readSocketOptions } from './sk-opts';
import { diagOfNetns, socketIdentityOf, socketInode } from './socket-fd';

// Netlink sockets (CRIU's sk-netlink.c): protocol, bound port id, multicast groups, default
// destination and the NETLINK_* switches, from NETLINK_SOCK_DIAG's netlink diag. Messages
// queued to read are not kept, as CRIU does not keep them: they came from the kernel (port id
// 0), and nothing in user space can queue a message that looks so — a re-sent copy would carry
// amber's port id and be dropped by any reader that checks its sender. The dump says how many
// bytes it leaves behind.

const SOCK_RAW = 3;
const STATE_CLOSE = 7;
export const NETLINK_PROTO = path.resolve(__dirname, '..', 'proto', 'sk-netlink.proto');

const PROTOCOLS: Record<number, string> = {
  0: 'NETLINK_ROUTE', 2: 'NETLINK_USERSOCK', 4: 'NETLINK_SOCK_DIAG', 5: 'NETLINK_NFLOG', 6: 'NETLINK_XFRM', 7: 'NETLINK_SELINUX',
  9: 'NETLINK_AUDIT', 10: 'NETLINK_FIB_LOOKUP', 11: 'NETLINK_CONNECTOR', 12: 'NETLINK_NETFILTER', 15: 'NETLINK_KOBJECT_UEVENT',
  16: 'NETLINK_GENERIC', 18: 'NETLINK_SCSITRANSPORT', 19: 'NETLINK_ECRYPTFS', 20: 'NETLINK_RDMA', 21: 'NETLINK_CRYPTO',
};
export const netlinkProtocolName = (p: number): string => PROTOCOLS[p] ?? `netlink protocol ${p}`;

export class NetlinkSocketError extends AmberError {
  constructor(readonly pid: number, readonly fd: number, what: string) {
    super(`fd ${fd} of pid ${pid}: ${what}`);
  }
}

/** Groups numbered from 1 <-> CRIU's bitmap of 32-bit words. */
export function groupsToWords(groups: readonly number[]): number[] {
  const words: number[] = [];
  for (const g of groups) {
    const w = (g - 1) >> 5;
    while (words.length <= w) words.push(0);
    words[w] = (words[w] | (1 << ((g - 1) & 31))) >>> 0;
  }
  return words;
}

export function wordsToGroups(words: readonly number[]): number[] {
  const out: number[] = [];
  words.forEach((word, w) => { for (let b = 0; b < 32; b++) if ((word >>> b) & 1) out.push(32 * w + b + 1); });
  return out;
}

function nlOptions(copy: number, rec: NetlinkDiagRecord | undefined): NlSkOptsEntry {
  const flags = rec?.flags ?? 0;
  const on = (opt: number) => getsockoptInt(copy, SOL_NETLINK, opt, `getsockopt(SOL_NETLINK ${opt})`) !== 0;
  return {
    pktinfo: (flags & NDIAG_FLAG.PKTINFO) !== 0, broadcastError: (flags & NDIAG_FLAG.BROADCAST_ERROR) !== 0,
    noEnobufs: (flags & NDIAG_FLAG.NO_ENOBUFS) !== 0, listenAllNsid: (flags & NDIAG_FLAG.LISTEN_ALL_NSID) !== 0,
    capAck: (flags & NDIAG_FLAG.CAP_ACK) !== 0, extAck: on(NETLINK_OPT.EXT_ACK), getStrictChk: on(NETLINK_OPT.GET_STRICT_CHK),
  };
}

/** sockaddr_nl: family, pad, port id, groups (the first 32). */
function sockaddrNl(portid: number, groups: number): Buffer {
  const a = Buffer.alloc(12);
  a.writeUInt16LE(AF.NETLINK, 0);
  a.writeUInt32LE(portid >>> 0, 4);
  a.writeUInt32LE(groups >>> 0, 8);
  return a;
}

/** What a netlink socket is, for people and for compare. */
export function describeNetlink(e: Pick<NetlinkSkEntry, 'protocol' | 'portid' | 'groups'>): string {
  const groups = wordsToGroups(e.groups);
  return `${netlinkProtocolName(e.protocol)} port ${e.portid >>> 0}${groups.length ? ` groups ${groups.join(',')}` : ''}`;
}

export class NetlinkSocketKind implements FileKind<NetlinkSkEntry> {
  readonly fdType = FdType.NETLINKSK;
  readonly name = 'netlink socket';
  readonly member = { field: 7, name: 'nlsk', protoFile: NETLINK_PROTO, message: 'ambernet.NetlinkSkEntry' };

  claims(fd: FdResource): boolean {
    return socketIdentityOf(fd)?.family === AF.NETLINK;
  }

  dumpDescription(ctx: DumpContext, task: DumpTask, fd: FdResource, id: number): NetlinkSkEntry {
    const where = (what: string) => new NetlinkSocketError(task.pid, fd.fd, `${what}; nothing was changed and the process keeps running`);
    // a socket never bound (and so never sent on, never joined) is in no table sock_diag walks
    const rec = diagOfNetns(ctx, 'netlink-diag', task.pid, netlinkSockets).get(socketInode(fd));
    const copy = takeFd(fd.pid, fd.fd);
    try {
      const { type, protocol } = socketIdentityOf(fd)!;
      if (rec?.ring) throw where(`${netlinkProtocolName(protocol)} socket has a mapped ring (NETLINK_RX_RING/TX_RING), which amber does not restore`);
      if (rec && rec.flags & NDIAG_FLAG.CB_RUNNING) {
        throw where(`${netlinkProtocolName(protocol)} socket is in the middle of a kernel dump (its reply is still being produced): the kernel side of it cannot be rebuilt; dump again once the process has read the reply`);
      }
      const e: NetlinkSkEntry = {
        id, ino: socketInode(fd), protocol, state: rec?.state ?? STATE_CLOSE, flags: fd.info.flags & ~O.CLOEXEC,
        portid: rec?.portid ?? 0, groups: groupsToWords(rec?.groups ?? []), dstPortid: rec?.dstPortid ?? 0, dstGroup: rec?.dstGroup ?? 0,
        fown: NO_FOWN, opts: readSocketOptions(copy), nlOpts: nlOptions(copy, rec), type,
      };
      const queued = rec?.meminfo[0] ?? 0;
      if (queued) {
        e.rqlen = queued;
        ctx.log.warn(`fd ${fd.fd} of pid ${task.pid}: ${describeNetlink(e)} has ${queued} bytes of messages queued to read; they are not restored (as CRIU: a kernel's message cannot be queued again from user space)`);
      }
      ctx.count('netlink sockets', 1);
      return e;
    } finally {
      close(copy);
    }
  }

  /**
   * socket, its switches and options, bind to the dumped port id (CRIU does the same: the port
   * id is how the kernel and other sockets address it, so another one will not do) and the
   * groups, then the default destination.
   */
  openDescription(_ctx: RestoreContext, task: RestoreTask, e: NetlinkSkEntry): number {
    const remote = task.remote;
    const what = describeNetlink(e);
    const fd = remote.sys.with(what).socket(AF.NETLINK, e.type ?? SOCK_RAW, e.protocol);
    try {
      setNlOptions(remote, fd, e.nlOpts, what);
      applySocketOptions(remote, fd, e.opts, what);
      if (e.portid) {
        remote.resetData();
        const r = remote.sysRaw.bind(fd, sockaddrNl(e.portid, e.groups[0] ?? 0), 12);
        remote.resetData();
        if (r === -98 /* EADDRINUSE */) {
          throw new AmberError(`pid ${task.pid}: ${what}: port id ${e.portid >>> 0} is taken in this network namespace by another socket; a netlink socket comes back with its own port id (as with CRIU) or not at all; the restore stops`);
        }
        if (r < 0) throw new AmberError(`pid ${task.pid}: ${what}: bind failed: ${errnoName(-r)}; the restore stops`);
      }
      for (const g of wordsToGroups(e.groups).filter((g) => g > 32)) {
        const v = Buffer.alloc(4);
        v.writeUInt32LE(g, 0);
        remote.resetData();
        const r = remote.sysRaw.setsockopt(fd, SOL_NETLINK, NETLINK_OPT.ADD_MEMBERSHIP, v, 4);
        remote.resetData();
        if (r < 0) throw new AmberError(`pid ${task.pid}: ${what}: cannot join group ${g}: ${errnoName(-r)}; the restore stops`);
      }
      if (e.state === NETLINK_STATE.CONNECTED) {
        remote.resetData();
        remote.sys.with(`${what}: connect to port ${e.dstPortid >>> 0}`).connect(fd, sockaddrNl(e.dstPortid, e.dstGroup), 12);
        remote.resetData();
      }
      setStatusFlags(remote, fd, e.flags);
      return fd;
    } catch (err) {
      remote.sysRaw.close(fd);
      throw err;
    }
  }

  compareDescription(live: FdResource, e: NetlinkSkEntry): FieldDifference[] {
    const out: FieldDifference[] = [];
    const diff = (what: string, expected: string, actual: string) => void (expected !== actual && out.push({ what, expected, actual }));
    const id = socketIdentityOf(live);
    if (!id || id.family !== AF.NETLINK) return [{ what: 'netlink socket', expected: describeNetlink(e), actual: live.link }];
    const rec = netlinkSockets(live.pid).get(socketInode(live));
    diff('protocol', netlinkProtocolName(e.protocol), netlinkProtocolName(id.protocol));
    diff('type', String(e.type ?? SOCK_RAW), String(id.type));
    diff('port id', String(e.portid >>> 0), String((rec?.portid ?? 0) >>> 0));
    diff('groups', wordsToGroups(e.groups).join(','), (rec?.groups ?? []).join(','));
    diff('state', String(e.state), String(rec?.state ?? STATE_CLOSE));
    diff('destination', `${e.dstPortid >>> 0}/${e.dstGroup}`, `${(rec?.dstPortid ?? 0) >>> 0}/${rec?.dstGroup ?? 0}`);
    diff('bytes queued', String(e.rqlen ?? 0), String(rec?.meminfo[0] ?? 0));
    diff('flags', `0${(e.flags & O.NONBLOCK).toString(8)}`, `0${(live.info.flags & O.NONBLOCK).toString(8)}`);
    const copy = takeFd(live.pid, live.fd);
    try {
      const nl = nlOptions(copy, rec);
      for (const k of Object.keys(nl) as (keyof NlSkOptsEntry)[]) diff(`netlink ${k}`, String(e.nlOpts?.[k] ?? false), String(nl[k] ?? false));
      out.push(...compareSocketOptions(readSocketOptions(copy), e.opts));
    } finally {
      close(copy);
    }
    return out;
  }
}

function setNlOptions(remote: RemoteSyscall, fd: number, o: NlSkOptsEntry | undefined, what: string): void {
  if (!o) return;
  const switches: [boolean | undefined, number, string][] = [
    [o.pktinfo, NETLINK_OPT.PKTINFO, 'NETLINK_PKTINFO'], [o.broadcastError, NETLINK_OPT.BROADCAST_ERROR, 'NETLINK_BROADCAST_ERROR'],
    [o.noEnobufs, NETLINK_OPT.NO_ENOBUFS, 'NETLINK_NO_ENOBUFS'], [o.listenAllNsid, NETLINK_OPT.LISTEN_ALL_NSID, 'NETLINK_LISTEN_ALL_NSID'],
    [o.capAck, NETLINK_OPT.CAP_ACK, 'NETLINK_CAP_ACK'], [o.extAck, NETLINK_OPT.EXT_ACK, 'NETLINK_EXT_ACK'],
    [o.getStrictChk, NETLINK_OPT.GET_STRICT_CHK, 'NETLINK_GET_STRICT_CHK'],
  ];
  for (const [on, opt, name] of switches) {
    if (!on) continue;
    const v = Buffer.alloc(4);
    v.writeInt32LE(1, 0);
    remote.resetData();
    const r = remote.sysRaw.setsockopt(fd, SOL_NETLINK, opt, v, 4);
    remote.resetData();
    if (r < 0) throw new AmberError(`pid ${remote.pid}: ${what}: cannot set ${name} again: ${errnoName(-r)}; the restore stops`);
  }
}
