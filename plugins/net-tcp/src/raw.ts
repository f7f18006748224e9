import { readFileSync } from 'node:fs';
import {
  AF, AmberError, IPPROTO, KernelError, SOCK, TCP_STATE, addrFromWords, bindInet, formatInetAddr, connectInet, formatEndpoint, inNetnsOf, peekDatagrams, setsockoptRaw, socket, socketFilterOf,
  type DumpContext, type DumpTask, type FieldDifference, type PeekedDatagram, type RestoreContext, type RestoreTask, type SocketIdentity,
} from '@amber/core';
import type { InetSkEntry } from './generated';
import type { DumpedInetSocket, InetProtocol, LiveInetSocket } from './inet-protocol';
import { endpointOf, optionsOf } from './inet-socket';
import { applyBeforeBind, applyReuse } from './options';
import { applyDgramOptions, attachFilter, compareDgramOptions, compareFilter, readDgramOptions } from './dgram-opts';

// ICMP ping sockets (SOCK_DGRAM, IPPROTO_ICMP / ICMPV6: the "port" is the echo identifier) and
// raw sockets (SOCK_RAW, any protocol): bound address or identifier, peer, options and
// memberships. What is queued to them is not kept: an echo reply or a raw packet came from the
// network (or the kernel), and putting one back would mean forging it; the dump says how many
// it leaves behind, as CRIU drops them without a word.

/**
 * A ping or raw socket's peer, as /proc/PID/net/{icmp,raw}[6] show it (the address as the
 * image keeps addresses: the hex words are the kernel's be32 words printed as numbers).
 */
export function procPeerOf(pid: number, family: number, raw: boolean, inode: number): number[] {
  const file = `/proc/${pid}/net/${raw ? 'raw' : 'icmp'}${family === AF.INET6 ? '6' : ''}`;
  for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (Number(f[9]) !== inode) continue;
    const rem = f[2].split(':')[0];
    const words = (rem.match(/.{8}/g) ?? []).map((w) => parseInt(w, 16) >>> 0);
    return f[3] === '01' ? words : [];
  }
  return [];
}

const describe = (sock: DumpedInetSocket) => `${formatEndpoint(sock.local)}${sock.peer ? ` -> ${formatEndpoint(sock.peer)}` : ''}`;

export class PingSocketError extends AmberError {}

/** The queue, without consuming it; sockets that cannot peek past the first answer at least that one. */
function peekSome(fd: number): PeekedDatagram[] {
  try {
    return peekDatagrams(fd);
  } catch (e) {
    if (e instanceof KernelError && (e.errnoName === 'EOPNOTSUPP' || e.errnoName === 'ENOTSUP')) return [];
    throw e;
  }
}

function warnDropped(ctx: DumpContext, where: string, fd: number, what: string): void {
  const queued = peekSome(fd);
  if (!queued.length) return;
  const bytes = queued.reduce((n, d) => n + d.data.length, 0);
  ctx.log.warn(`${where}: ${queued.length} ${what}(s) (${bytes} bytes) queued to read are not restored`);
}

function bindToDevice(fd: number, dev: string): void {
  const r = setsockoptRaw(fd, 1 /* SOL_SOCKET */, 25 /* SO_BINDTODEVICE */, Buffer.from(`${dev}\0`));
  if (r < 0) throw new KernelError('setsockopt(SO_BINDTODEVICE)', -r, undefined, dev);
}

abstract class DatagramLikeProtocol implements InetProtocol {
  abstract readonly name: string;
  protected abstract readonly type: number;
  protected abstract readonly raw: boolean;
  protected abstract readonly queuedWhat: string;
  abstract matches(id: SocketIdentity): boolean;

  dump(ctx: DumpContext, task: DumpTask, sock: DumpedInetSocket, entry: InetSkEntry): void {
    const where = `fd ${sock.fd.fd} of pid ${task.pid} (${this.name} ${describe(sock)})`;
    const peer = procPeerOf(task.pid, entry.family, this.raw, entry.ino);
    entry.state = peer.length ? TCP_STATE.ESTABLISHED : TCP_STATE.CLOSE;
    entry.dgram = readDgramOptions(task.pid, sock.copy, entry.family, entry.proto, this.raw, where);
    if (peer.length) entry.dgram.peerAddr = peer;
    entry.opts.soFilter = socketFilterOf(sock.copy);
    warnDropped(ctx, where, sock.copy, this.queuedWhat);
    ctx.count(`${this.name} sockets`, 1);
  }

  open(ctx: RestoreContext, task: RestoreTask, e: InetSkEntry): number {
    this.mayOpen(ctx, task, e);
    const fd = socket(e.family, this.type | SOCK.CLOEXEC, e.proto);
    const local = endpointOf(e, 'src');
    // a raw socket has no port to share and refuses IPV6_V6ONLY: of what goes before bind, only the device
    if (!this.raw) applyBeforeBind(fd, e.family, optionsOf(e));
    else if (e.opts.soBoundDev) bindToDevice(fd, e.opts.soBoundDev);
    if (local.port || local.addr.some((b) => b !== 0)) bindInet(fd, { ...local, port: this.raw ? 0 : local.port });
    if (e.state === TCP_STATE.ESTABLISHED && e.dgram?.peerAddr.length) connectInet(fd, { family: e.family, addr: addrFromWords(e.family, e.dgram.peerAddr), port: 0 });
    if (e.dgram) applyDgramOptions(fd, e.family, e.dgram, `pid ${task.pid}: ${this.name} socket ${formatEndpoint(local)}`);
    attachFilter(fd, e.opts.soFilter, `pid ${task.pid}: ${this.name} socket ${formatEndpoint(local)}`);
    return fd;
  }

  finish(_ctx: RestoreContext, e: InetSkEntry, fd: number): void {
    applyReuse(fd, optionsOf(e));
  }

  /** A check before amber makes the socket for the task (ping: the task's group may). */
  protected mayOpen(_ctx: RestoreContext, _task: RestoreTask, _e: InetSkEntry): void {}

  compare(live: LiveInetSocket, e: InetSkEntry): FieldDifference[] {
    const out: FieldDifference[] = [];
    const peer = (words: readonly number[]) => (words.length ? formatInetAddr(e.family, addrFromWords(e.family, words)) : 'none');
    const now = procPeerOf(live.fd.pid, e.family, this.raw, Number(live.fd.ino));
    if (peer(now) !== peer(e.dgram?.peerAddr ?? [])) out.push({ what: `${this.name} peer`, expected: peer(e.dgram?.peerAddr ?? []), actual: peer(now) });
    if (e.dgram) out.push(...compareDgramOptions(readDgramOptions(live.fd.pid, live.copy, e.family, e.proto, this.raw, 'compare'), e.dgram, e.family));
    out.push(...compareFilter(socketFilterOf(live.copy), e.opts.soFilter));
    return out;
  }
}

/** ICMP echo sockets, which an unprivileged program may open when net.ipv4.ping_group_range lets its group. */
export class PingProtocol extends DatagramLikeProtocol {
  readonly name = 'ping';
  protected readonly type = SOCK.DGRAM;
  protected readonly raw = false;
  protected readonly queuedWhat = 'echo reply';

  matches(id: SocketIdentity): boolean {
    return id.type === SOCK.DGRAM && ((id.family === AF.INET && id.protocol === IPPROTO.ICMP) || (id.family === AF.INET6 && id.protocol === IPPROTO.ICMPV6));
  }

  /**
   * amber makes the socket, as root: it gives the task one only if the task's group may open
   * ping sockets in its namespace now (the range is the namespace's, and may have changed).
   */
  protected override mayOpen(_ctx: RestoreContext, task: RestoreTask, e: InetSkEntry): void {
    const gid = task.creds?.egid ?? 0;
    const range = inNetnsOf(task.pid, () => readFileSync('/proc/sys/net/ipv4/ping_group_range', 'utf8')).trim().split(/\s+/).map(Number);
    if (!(gid >= range[0] && gid <= range[1])) {
      throw new PingSocketError(`pid ${task.pid}: its ping socket ${formatEndpoint(endpointOf(e, 'src'))} needs group ${gid} in net.ipv4.ping_group_range of its network namespace, which is ${range.join(' ')} now; the restore stops`);
    }
  }
}

/** Raw IP sockets of any protocol (IPPROTO_RAW, ICMP, a protocol number of the program's). */
export class RawProtocol extends DatagramLikeProtocol {
  readonly name = 'raw';
  protected readonly type = 3; // SOCK_RAW
  protected readonly raw = true;
  protected readonly queuedWhat = 'packet';

  matches(id: SocketIdentity): boolean {
    return id.type === 3;
  }
}
