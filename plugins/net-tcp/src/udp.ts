import {
  AmberError, IPPROTO, SO, SOCK, SOL_SOCKET, TCP_STATE, bindInet, connectInet, formatEndpoint, getsockoptInt, peekDatagrams, socket, socketFilterOf,
  type DumpContext, type DumpTask, type FieldDifference, type RestoreContext, type RestoreTask, type SocketIdentity,
} from '@amber/core';
import type { DgramSkEntry, InetSkEntry } from './generated';
import type { DumpedInetSocket, InetProtocol, LiveInetSocket } from './inet-protocol';
import { endpointOf, optionsOf } from './inet-socket';
import { applyBeforeBind, applyReuse } from './options';
import { applyDgramOptions, attachFilter, compareDgramOptions, compareFilter, readDgramOptions } from './dgram-opts';
import { dumpDatagrams, refillDatagrams } from './dgram-queue';

// UDP and UDP-lite sockets: bound, connected (a default peer) or neither, with their multicast
// memberships and options, and the datagrams queued to read kept (dgram-queue.ts).

const SOL_UDP = 17;
const UDP_CORK = 1;

export class UdpCorkedError extends AmberError {}

const describe = (sock: DumpedInetSocket | LiveInetSocket) => `${formatEndpoint(sock.local)}${sock.peer ? ` -> ${formatEndpoint(sock.peer)}` : ''}`;
const protoName = (p: number) => (p === IPPROTO.UDPLITE ? 'UDP-lite' : 'UDP');

/** What a description of a datagram socket is, for its errors and the log. */
export function dgramWhere(pid: number, e: InetSkEntry): string {
  const local = endpointOf(e, 'src');
  const peer = e.dstAddr.length && e.dstPort ? ` -> ${formatEndpoint(endpointOf(e, 'dst'))}` : '';
  return `pid ${pid}: ${protoName(e.proto)} socket ${formatEndpoint(local)}${peer}`;
}

export class UdpProtocol implements InetProtocol {
  readonly name = 'UDP';

  matches(id: SocketIdentity): boolean {
    return id.type === SOCK.DGRAM && (id.protocol === IPPROTO.UDP || id.protocol === IPPROTO.UDPLITE);
  }

  dump(ctx: DumpContext, task: DumpTask, sock: DumpedInetSocket, entry: InetSkEntry): void {
    const where = `fd ${sock.fd.fd} of pid ${task.pid} (${protoName(entry.proto)} ${describe(sock)})`;
    // data held back by UDP_CORK (or MSG_MORE) is a datagram not yet built: nothing can take it out
    const corked = getsockoptInt(sock.copy, SOL_UDP, UDP_CORK, 'getsockopt(UDP_CORK)') !== 0;
    if (corked && (sock.diag?.wqueue ?? 0) > 0) {
      throw new UdpCorkedError(`${where}: ${sock.diag?.wqueue} bytes are corked (UDP_CORK) and not sent yet, which amber cannot take out of the socket; nothing was changed and the process keeps running`);
    }
    entry.state = sock.peer ? TCP_STATE.ESTABLISHED : TCP_STATE.CLOSE;
    const dgram: DgramSkEntry = readDgramOptions(task.pid, sock.copy, entry.family, entry.proto, false, where);
    const peekOff = getsockoptInt(sock.copy, SOL_SOCKET, SO.PEEK_OFF, 'getsockopt(SO_PEEK_OFF)');
    if (peekOff >= 0) dgram.peekOff = peekOff;
    dumpDatagrams(ctx, sock.copy, entry, dgram);
    entry.dgram = dgram;
    entry.opts.soFilter = socketFilterOf(sock.copy);
    ctx.count('udp sockets', 1);
  }

  open(_ctx: RestoreContext, task: RestoreTask, e: InetSkEntry): number {
    const fd = socket(e.family, SOCK.DGRAM | SOCK.CLOEXEC, e.proto);
    const local = endpointOf(e, 'src');
    applyBeforeBind(fd, e.family, optionsOf(e));
    if (local.port || local.addr.some((b) => b !== 0)) bindInet(fd, local);
    if (e.state === TCP_STATE.ESTABLISHED) connectInet(fd, endpointOf(e, 'dst'));
    if (e.dgram) applyDgramOptions(fd, e.family, e.dgram, dgramWhere(task.pid, e));
    attachFilter(fd, e.opts.soFilter, dgramWhere(task.pid, e));
    return fd;
  }

  postOpen(ctx: RestoreContext, task: RestoreTask, e: InetSkEntry, fd: number): void {
    refillDatagrams(ctx, fd, e, dgramWhere(task.pid, e));
  }

  /** Right before the tree runs: SO_REUSEADDR as the program had it (the restore bound with it on). */
  finish(_ctx: RestoreContext, e: InetSkEntry, fd: number): void {
    applyReuse(fd, optionsOf(e));
  }

  compare(live: LiveInetSocket, e: InetSkEntry): FieldDifference[] {
    const out: FieldDifference[] = [];
    const state = live.peer ? TCP_STATE.ESTABLISHED : TCP_STATE.CLOSE;
    if (state !== e.state) out.push({ what: 'UDP state', expected: e.state === TCP_STATE.ESTABLISHED ? 'connected' : 'not connected', actual: live.peer ? 'connected' : 'not connected' });
    // An empty datagram is marked when a peek at an offset returns it, and every later such peek
    // passes over it: compare would not see one the dump saw, and its own peek would hide a
    // restored one from the next dump. A queue that held one is left unpeeked.
    if (!e.dgram?.queuedEmpty) {
      const queued = peekDatagrams(live.copy);
      const bytes = queued.reduce((n, d) => n + d.data.length, 0);
      const want = `${e.dgram?.queued ?? 0} (${e.dgram?.queuedBytes ?? 0} bytes)`;
      const have = `${queued.length} (${bytes} bytes)`;
      if (want !== have) out.push({ what: 'datagrams queued', expected: want, actual: have });
    }
    if (e.dgram) out.push(...compareDgramOptions(readDgramOptions(live.fd.pid, live.copy, e.family, e.proto, false, 'compare'), e.dgram, e.family));
    out.push(...compareFilter(socketFilterOf(live.copy), e.opts.soFilter));
    return out;
  }
}
