import {
  AmberError, IPPROTO, SOCK, TCP_STATE, bindInet, formatEndpoint, listen, repairOff, repairOn, restoreTcpStream, saveTcpStream, socket,
  tcpStateName, type DumpContext, type DumpTask, type FieldDifference, type ImageStore, type RestoreContext, type RestoreTask, type SocketIdentity, type TcpStream,
} from '@amber/core';
import type { InetSkEntry, TcpStreamEntry } from './generated';
import type { DumpedInetSocket, InetProtocol, LiveInetSocket } from './inet-protocol';
import { tcpStreamImage } from './images';
import { endpointOf, optionsOf } from './inet-socket';
import { applyBeforeBind, applyReuse } from './options';

/** States of a connection TCP repair dumps (with --tcp-established). */
const CONNECTED = new Set<number>([TCP_STATE.ESTABLISHED, TCP_STATE.FIN_WAIT1, TCP_STATE.FIN_WAIT2, TCP_STATE.CLOSE_WAIT, TCP_STATE.LAST_ACK, TCP_STATE.CLOSING]);
const IN_FLIGHT = new Set<number>([TCP_STATE.SYN_SENT, TCP_STATE.SYN_RECV]);

/** local -> peer; a connection being set up has no peer yet for getpeername, but sock_diag knows where it goes. */
function describe(sock: DumpedInetSocket): string {
  const d = sock.diag;
  const peer = sock.peer ?? (d && d.dstPort ? { family: d.family, addr: d.dst, port: d.dstPort } : undefined);
  return `${formatEndpoint(sock.local)}${peer ? ` -> ${formatEndpoint(peer)}` : ''}`;
}

export class TcpEstablishedError extends AmberError {
  constructor(readonly pid: number, readonly fd: number, what: string, state: string) {
    super(`fd ${fd} of pid ${pid} is a TCP connection ${what} (${state}); dumping it needs --tcp-established; nothing was changed and the process keeps running`);
  }
}

export class TcpInFlightError extends AmberError {
  constructor(readonly pid: number, readonly fd: number, what: string, skipped: string) {
    super(`fd ${fd} of pid ${pid} is ${what}, which amber (like CRIU) cannot dump; --skip-in-flight drops it (${skipped}); nothing was changed and the process keeps running`);
  }
}

export class TcpUnsupportedError extends AmberError {
  constructor(readonly pid: number, readonly fd: number, where: string, what: string) {
    super(`fd ${fd} of pid ${pid} is a TCP socket ${where} that ${what}, which amber cannot dump; nothing was changed and the process keeps running`);
  }
}

export class TcpRestoreRefusedError extends AmberError {
  constructor(readonly pid: number, what: string) {
    super(`pid ${pid}: the images hold a TCP connection ${what}; restoring it needs --tcp-established (or --tcp-close to restore it closed)`);
  }
}

const toEntry = (s: TcpStream): TcpStreamEntry => ({
  inqLen: s.inqLen, inqSeq: s.inqSeq, outqLen: s.outqLen, outqSeq: s.outqSeq, optMask: s.optMask, sndWscale: s.sndWscale,
  mssClamp: s.mssClamp, rcvWscale: s.rcvWscale, timestamp: s.timestamp, unsqLen: s.unsqLen,
  ...(s.window ? { sndWl1: s.window.sndWl1, sndWnd: s.window.sndWnd, maxWindow: s.window.maxWindow, rcvWnd: s.window.rcvWnd, rcvWup: s.window.rcvWup } : {}),
});

function fromEntry(state: number, e: TcpStreamEntry, blob: Buffer): TcpStream {
  const window = e.sndWl1 !== undefined && e.sndWnd !== undefined && e.maxWindow !== undefined && e.rcvWnd !== undefined && e.rcvWup !== undefined
    ? { sndWl1: e.sndWl1, sndWnd: e.sndWnd, maxWindow: e.maxWindow, rcvWnd: e.rcvWnd, rcvWup: e.rcvWup } : undefined;
  return {
    state, inqLen: e.inqLen, inqSeq: e.inqSeq, outqLen: e.outqLen, outqSeq: e.outqSeq, unsqLen: e.unsqLen ?? 0, optMask: e.optMask,
    sndWscale: e.sndWscale, rcvWscale: e.rcvWscale ?? 0, mssClamp: e.mssClamp, timestamp: e.timestamp, window,
    inq: blob.subarray(0, e.inqLen), outq: blob.subarray(e.inqLen, e.inqLen + e.outqLen),
  };
}

/** Sockets in TCP repair mode during a dump: a failed dump, or one leaving the tree running, turns it off again. */
export const repairedCopies = (ctx: DumpContext): number[] => ctx.state('net-tcp:repaired', () => [] as number[]);

/** TCP: listeners, bound and unbound sockets, and connections through TCP repair. */
export class TcpProtocol implements InetProtocol {
  readonly name = 'TCP';

  constructor(private readonly store: ImageStore) {}

  matches(id: SocketIdentity): boolean {
    return id.type === SOCK.STREAM && id.protocol === IPPROTO.TCP;
  }

  dump(ctx: DumpContext, task: DumpTask, sock: DumpedInetSocket, entry: InetSkEntry): void {
    const state = entry.state;
    const where = describe(sock);
    // keys amber cannot read back: the socket would come back without them
    if (sock.diag?.md5sig) throw new TcpUnsupportedError(task.pid, sock.fd.fd, where, 'has TCP-MD5 signature keys');
    if (state === TCP_STATE.LISTEN) {
      entry.backlog = sock.diag?.wqueue ?? 0;
      const pending = sock.diag?.rqueue ?? 0;
      if (pending) {
        const what = `a TCP listener on ${where} with ${pending} connection(s) not yet accepted`;
        if (!ctx.options.skipInFlight) throw new TcpInFlightError(task.pid, sock.fd.fd, what, 'the listener comes back without them; their clients see a reset');
        ctx.log.warn(`pid ${task.pid} fd ${sock.fd.fd}: ${what}: dropped (--skip-in-flight); their clients see a reset`);
      }
      return;
    }
    if (IN_FLIGHT.has(state)) {
      const what = `a TCP connection ${where} still being set up (${tcpStateName(state)})`;
      if (!ctx.options.skipInFlight) throw new TcpInFlightError(task.pid, sock.fd.fd, what, 'the socket comes back unconnected');
      ctx.log.warn(`pid ${task.pid} fd ${sock.fd.fd}: ${what}: restored as a new unconnected socket (--skip-in-flight)`);
      entry.amberClosed = true;
      return;
    }
    if (!CONNECTED.has(state)) return;
    if (!ctx.options.tcpEstablished) throw new TcpEstablishedError(task.pid, sock.fd.fd, where, tcpStateName(state));
    // state TCP repair does not carry: the connection would come back silently different
    if (sock.diag?.ulp) throw new TcpUnsupportedError(task.pid, sock.fd.fd, where, `runs the upper-layer protocol "${sock.diag.ulp}" (kernel TLS or the like)`);
    repairOn(sock.copy);
    repairedCopies(ctx).push(sock.copy);
    const stream = saveTcpStream(sock.copy);
    ctx.store.write('tcp-stream', tcpStreamImage(entry.ino), [toEntry(stream)], { blobs: [Buffer.concat([stream.inq, stream.outq])] });
    ctx.count('tcp connections', 1);
  }

  open(ctx: RestoreContext, task: RestoreTask, e: InetSkEntry): number {
    const fd = socket(e.family, SOCK.STREAM | SOCK.CLOEXEC, 0);
    const o = optionsOf(e);
    const local = endpointOf(e, 'src');
    if (e.amberClosed) return fd;
    if (e.state === TCP_STATE.LISTEN) {
      applyBeforeBind(fd, e.family, o);
      bindInet(fd, local);
      listen(fd, e.backlog);
      return fd;
    }
    if (CONNECTED.has(e.state)) {
      if (ctx.options.tcpClose) return fd;
      const peer = endpointOf(e, 'dst');
      if (!ctx.options.tcpEstablished) throw new TcpRestoreRefusedError(task.pid, `${formatEndpoint(local)} -> ${formatEndpoint(peer)} (${tcpStateName(e.state)})`);
      applyBeforeBind(fd, e.family, o);
      const img = this.store.read<TcpStreamEntry>('tcp-stream', tcpStreamImage(e.ino));
      restoreTcpStream(fd, fromEntry(e.state, img.entries[0], img.blobs[0] ?? Buffer.alloc(0)), local, peer);
      return fd;
    }
    // TCP_CLOSE: a socket made and maybe bound, never connected
    if (local.port) {
      applyBeforeBind(fd, e.family, o);
      bindInet(fd, local);
    }
    return fd;
  }

  /** Right before the tree runs: connections leave repair mode (and start sending), SO_REUSEADDR gets its dumped value. */
  finish(ctx: RestoreContext, e: InetSkEntry, fd: number): void {
    if (CONNECTED.has(e.state) && !e.amberClosed && !ctx.options.tcpClose) repairOff(fd);
    applyReuse(fd, optionsOf(e));
  }

  compare(live: LiveInetSocket, e: InetSkEntry): FieldDifference[] {
    const out: FieldDifference[] = [];
    const state = live.diag?.state ?? TCP_STATE.CLOSE;
    const expected = e.amberClosed ? TCP_STATE.CLOSE : e.state;
    if (state !== expected) out.push({ what: 'TCP state', expected: tcpStateName(expected), actual: tcpStateName(state) });
    if (e.state === TCP_STATE.LISTEN && live.diag && live.diag.wqueue !== e.backlog) out.push({ what: 'backlog', expected: `${e.backlog}`, actual: `${live.diag.wqueue}` });
    if (CONNECTED.has(e.state) && !e.amberClosed && live.diag && this.store.has(tcpStreamImage(e.ino))) {
      const s = this.store.read<TcpStreamEntry>('tcp-stream', tcpStreamImage(e.ino)).entries[0];
      if (live.diag.rqueue !== s.inqLen) out.push({ what: 'bytes not read', expected: `${s.inqLen}`, actual: `${live.diag.rqueue}` });
      if (live.diag.wqueue !== s.outqLen) out.push({ what: 'bytes not acknowledged', expected: `${s.outqLen}`, actual: `${live.diag.wqueue}` });
    }
    return out;
  }
}
