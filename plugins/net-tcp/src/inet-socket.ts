import {
  AF, AmberError, FdType, IPPROTO, NO_FOWN, O, addrFromWords, addrToWords, close, fetchFd, getpeernameInet, getsocknameInet, identityOfSocket,
  inetSocketList, inNetnsOf, netnsOf, setStatusFlags, takeFd,
  type DumpContext, type DumpTask, type FdResource, type FieldDifference, type FileKind, type InetDiagRecord, type InetEndpoint,
  type RestoreContext, type RestoreTask, type SocketIdentity,
} from '@amber/core';
import { constants } from 'node:fs';
import type { InetSkEntry } from './generated';
import type { DumpedInetSocket, InetProtocol } from './inet-protocol';
import { SK_INET_PROTO } from './images';
import { applyInetOptions, compareInetOptions, readInetOptions, type InetOptions } from './options';

const S_IFSOCK = 0o140000;

export class UnknownInetProtocolError extends AmberError {
  constructor(readonly pid: number, readonly fd: number, identity: SocketIdentity) {
    super(`fd ${fd} of pid ${pid} is an inet socket of type ${identity.type}, protocol ${identity.protocol}, which amber cannot dump yet; nothing was changed and the process keeps running`);
  }
}

const isInet = (family: number) => family === AF.INET || family === AF.INET6;
const inodeOf = (fd: FdResource) => Number(fd.ino & 0xffffffffn);

/** An inet endpoint out of an entry's address words and port. */
export function endpointOf(e: InetSkEntry, which: 'src' | 'dst'): InetEndpoint {
  return { family: e.family, addr: addrFromWords(e.family, which === 'src' ? e.srcAddr : e.dstAddr), port: which === 'src' ? e.srcPort : e.dstPort };
}

/** The options part of an entry, as options.ts reads and sets it. */
export const optionsOf = (e: InetSkEntry): InetOptions => ({ opts: e.opts, ipOpts: e.ipOpts ?? {}, v6only: e.v6only, tcpOpts: e.tcpOpts });

/** What sock_diag says of a socket of pid's network namespace (every list asked once per run). */
function diagOf(lists: Map<string, InetDiagRecord[]>, pid: number, id: SocketIdentity, ino: number): InetDiagRecord | undefined {
  const protocol = id.protocol === IPPROTO.TCP || id.protocol === IPPROTO.UDP || id.protocol === IPPROTO.UDPLITE ? id.protocol : IPPROTO.RAW;
  const key = `${netnsOf(pid)}:${id.family}:${protocol}:${id.protocol}`;
  let list = lists.get(key);
  if (!list) {
    list = inNetnsOf(pid, () => inetSocketList(id.family, protocol, { rawProtocol: id.protocol }));
    lists.set(key, list);
  }
  return list.find((r) => r.inode === ino);
}

/** A socket amber made for a description, kept until the resume step (protocols finish it there). */
export interface MadeSocket {
  protocol: InetProtocol;
  entry: InetSkEntry;
  fd: number;
}

/** AF_INET and AF_INET6 sockets of every protocol a module handles: files.img's isk (CRIU's inet_sk_entry). */
export class InetSocketKind implements FileKind<InetSkEntry> {
  readonly fdType = FdType.INETSK;
  readonly name = 'inet socket';
  readonly member = { field: 4, name: 'isk', protoFile: SK_INET_PROTO, message: 'ambernet.InetSkEntry' };

  constructor(private readonly protocols: readonly InetProtocol[]) {}

  claims(fd: FdResource): boolean {
    if (!fd.link.startsWith('socket:[') || (fd.mode & constants.S_IFMT) !== S_IFSOCK) return false;
    const copy = takeFd(fd.pid, fd.fd);
    try {
      return isInet(identityOfSocket(copy).family);
    } finally {
      close(copy);
    }
  }

  private protocolOf(pid: number, fd: number, identity: SocketIdentity): InetProtocol {
    const p = this.protocols.find((m) => m.matches(identity));
    if (!p) throw new UnknownInetProtocolError(pid, fd, identity);
    return p;
  }

  dumpDescription(ctx: DumpContext, task: DumpTask, fd: FdResource, id: number): InetSkEntry {
    const copy = takeFd(fd.pid, fd.fd);
    // the copy stays open until the dump ends: TCP repair mode lives on it (afterDump closes it)
    ctx.state('net-tcp:copies', () => [] as number[]).push(copy);
    const identity = identityOfSocket(copy);
    const protocol = this.protocolOf(task.pid, fd.fd, identity);
    const diag = diagOf(ctx.state('net-tcp:diag', () => new Map<string, InetDiagRecord[]>()), task.pid, identity, inodeOf(fd));
    const sock: DumpedInetSocket = { fd, copy, identity, diag, local: getsocknameInet(copy), peer: getpeernameInet(copy) };
    const o = readInetOptions(copy, identity.family, identity.protocol === IPPROTO.TCP);
    const entry: InetSkEntry = {
      id, ino: inodeOf(fd), family: identity.family, type: identity.type, proto: identity.protocol, state: diag?.state ?? 7,
      srcPort: sock.local.port, dstPort: sock.peer?.port ?? 0, flags: fd.info.flags & ~O.CLOEXEC, backlog: 0,
      srcAddr: addrToWords(sock.local.addr), dstAddr: sock.peer ? addrToWords(sock.peer.addr) : [], fown: NO_FOWN,
      opts: o.opts, ipOpts: o.ipOpts, shutdown: diag?.shutdown ?? 0,
    };
    if (o.v6only !== undefined) entry.v6only = o.v6only;
    if (o.tcpOpts) entry.tcpOpts = o.tcpOpts;
    if (o.opts.soBoundDev) entry.ifname = o.opts.soBoundDev;
    protocol.dump(ctx, task, sock, entry);
    return entry;
  }

  openDescription(ctx: RestoreContext, task: RestoreTask, e: InetSkEntry): number {
    const protocol = this.protocolOf(task.pid, -1, { family: e.family, type: e.type, protocol: e.proto });
    // made in the task's network namespace: a socket keeps the one it was made in
    const mine = inNetnsOf(task.pid, () => protocol.open(ctx, task, e));
    ctx.state('net-tcp:made', () => new Map<number, MadeSocket>()).set(e.id, { protocol, entry: e, fd: mine });
    applyInetOptions(mine, e.family, optionsOf(e));
    const fd = fetchFd(task.remote, process.pid, mine);
    setStatusFlags(task.remote, fd, e.flags);
    return fd;
  }

  postOpen(ctx: RestoreContext, task: RestoreTask, e: InetSkEntry, _fd: number, id: number): void {
    const made = ctx.state('net-tcp:made', () => new Map<number, MadeSocket>()).get(id);
    if (made?.protocol.postOpen) inNetnsOf(task.pid, () => made.protocol.postOpen?.(ctx, task, e, made.fd));
  }

  compareDescription(live: FdResource, e: InetSkEntry): FieldDifference[] {
    const copy = takeFd(live.pid, live.fd);
    try {
      const identity = identityOfSocket(copy);
      const out: FieldDifference[] = [];
      const diff = (what: string, expected: unknown, actual: unknown) => void (String(expected) !== String(actual) && out.push({ what, expected: String(expected), actual: String(actual) }));
      diff('family', e.family, identity.family);
      diff('type', e.type, identity.type);
      diff('protocol', e.proto, identity.protocol);
      if (out.length) return out;
      const diag = diagOf(new Map(), live.pid, identity, inodeOf(live));
      const local = getsocknameInet(copy);
      const peer = getpeernameInet(copy);
      diff('local address', addrFromWords(e.family, e.srcAddr).toString('hex'), local.addr.toString('hex'));
      diff('local port', e.srcPort, local.port);
      if (!e.amberClosed) {
        diff('peer address', e.dstAddr.length ? addrFromWords(e.family, e.dstAddr).toString('hex') : '', peer ? peer.addr.toString('hex') : '');
        diff('peer port', e.dstPort, peer?.port ?? 0);
      }
      diff('flags', `0${(e.flags & O.NONBLOCK).toString(8)}`, `0${(live.info.flags & O.NONBLOCK).toString(8)}`);
      out.push(...compareInetOptions(readInetOptions(copy, identity.family, identity.protocol === IPPROTO.TCP), optionsOf(e)));
      const protocol = this.protocols.find((m) => m.matches(identity));
      if (protocol?.compare) out.push(...protocol.compare({ fd: live, copy, identity, diag, local, peer }, e));
      return out;
    } finally {
      close(copy);
    }
  }
}
