import {
  AF_PACKET, AmberError, FdType, NO_FOWN, O, PACKET_OPT, PDI, SOL_PACKET, close, errnoName, packetSockets, setStatusFlags, takeFd,
  type DumpContext, type DumpTask, type FdResource, type FieldDifference, type FileKind, type PacketDiagRecord,
  type PacketRing as DiagRing, type RestoreContext, type RestoreTask,
} from '@amber/core';
import * as path from 'node:path';
import type { PacketMclist, PacketSockEntry } from './generated';
import { applySocketOptions, compareSocketOptions, readSocketOptions } from './sk-opts';
import { diagOfNetns, socketIdentityOf, socketInode } from './socket-fd';

// Packet sockets (AF_PACKET, CRIU's sk-packet.c): type, protocol, the interface bound to,
// PACKET_VERSION and the other switches, memberships and fanout, from NETLINK_SOCK_DIAG's
// packet diag. Frames queued to read are not kept (frames caught off a link, which a network
// may lose anyway); mapped rings are refused.

export const PACKET_PROTO = path.resolve(__dirname, '..', 'proto', 'sk-packet.proto');
const NO_FANOUT = 0xffffffff;

export class PacketSocketError extends AmberError {
  constructor(readonly pid: number, readonly fd: number, what: string) {
    super(`fd ${fd} of pid ${pid}: ${what}`);
  }
}

const ethProto = (p: number) => `0x${p.toString(16).padStart(4, '0')}`;
/** socket(2) and bind take the protocol in network byte order; sock_diag and the image hold it as a number. */
const htons = (p: number) => ((p & 0xff) << 8) | ((p >> 8) & 0xff);
const kindName = (type: number) => (type === 2 ? 'SOCK_DGRAM' : type === 3 ? 'SOCK_RAW' : `type ${type}`);

export function describePacket(e: Pick<PacketSockEntry, 'type' | 'protocol' | 'ifindex'>): string {
  return `packet ${kindName(e.type)} socket (protocol ${ethProto(e.protocol)}, ${e.ifindex ? `interface ${e.ifindex}` : 'every interface'})`;
}

const ringText = (r: DiagRing) => `${r.frameNr} frames of ${r.frameSize} bytes in ${r.blockNr} blocks`;

/** sockaddr_ll for bind: family, protocol, ifindex. */
function sockaddrLl(protocol: number, ifindex: number): Buffer {
  const a = Buffer.alloc(20);
  a.writeUInt16LE(AF_PACKET, 0);
  a.writeUInt16BE(protocol, 2);
  a.writeInt32LE(ifindex, 4);
  return a;
}

/** struct packet_mreq: ifindex, type, address length, address (8 bytes). */
function packetMreq(m: PacketMclist): Buffer {
  const b = Buffer.alloc(16);
  b.writeInt32LE(m.index, 0);
  b.writeUInt16LE(m.type, 4);
  b.writeUInt16LE(Math.min(m.addr.length, 8), 6);
  m.addr.copy(b, 8, 0, 8);
  return b;
}

const flag = (rec: PacketDiagRecord, bit: number) => (rec.flags & bit) !== 0;

function entryOf(rec: PacketDiagRecord): Omit<PacketSockEntry, 'id' | 'flags' | 'fown' | 'opts'> {
  return {
    type: rec.type, protocol: rec.protocol, ifindex: rec.ifindex, version: rec.version, reserve: rec.reserve,
    auxData: flag(rec, PDI.AUXDATA), origDev: flag(rec, PDI.ORIGDEV), vnetHdr: flag(rec, PDI.VNETHDR), loss: flag(rec, PDI.LOSS),
    timestamp: rec.tstamp, copyThresh: rec.copyThresh,
    mclist: rec.mclist.map((m) => ({ index: m.ifindex, type: m.type, addr: m.addr, count: m.count })),
    fanout: rec.fanout ?? NO_FANOUT,
  };
}

export class PacketSocketKind implements FileKind<PacketSockEntry> {
  readonly fdType = FdType.PACKETSK;
  readonly name = 'packet socket';
  readonly member = { field: 6, name: 'psk', protoFile: PACKET_PROTO, message: 'ambernet.PacketSockEntry' };

  claims(fd: FdResource): boolean {
    return socketIdentityOf(fd)?.family === AF_PACKET;
  }

  dumpDescription(ctx: DumpContext, task: DumpTask, fd: FdResource, id: number): PacketSockEntry {
    const refuse = (what: string) => new PacketSocketError(task.pid, fd.fd, `${what}; nothing was changed and the process keeps running`);
    const rec = diagOfNetns(ctx, 'packet-diag', task.pid, packetSockets).get(socketInode(fd));
    if (!rec) throw refuse(`sock_diag does not know packet socket ${fd.link} in the process's network namespace`);
    const ring = rec.rxRing ? `PACKET_RX_RING (${ringText(rec.rxRing)})` : rec.txRing ? `PACKET_TX_RING (${ringText(rec.txRing)})` : undefined;
    if (ring) throw refuse(`${describePacket(rec)} has a ${ring} (a ring shared with the process), which amber does not restore`);
    const copy = takeFd(fd.pid, fd.fd);
    try {
      const e: PacketSockEntry = { id, flags: fd.info.flags & ~O.CLOEXEC, fown: NO_FOWN, opts: readSocketOptions(copy), ...entryOf(rec) };
      const queued = rec.meminfo[0] ?? 0;
      if (queued) ctx.log.warn(`fd ${fd.fd} of pid ${task.pid}: ${describePacket(e)} has ${queued} bytes of frames queued to read; they are not restored`);
      ctx.count('packet sockets', 1);
      return e;
    } finally {
      close(copy);
    }
  }

  /** As CRIU: socket, options, bind, the PACKET_* switches, memberships, then fanout (which needs a bound socket). */
  openDescription(_ctx: RestoreContext, task: RestoreTask, e: PacketSockEntry): number {
    const remote = task.remote;
    const what = describePacket(e);
    const fail = (step: string, r: number) => new AmberError(`pid ${task.pid}: ${what}: ${step} failed: ${errnoName(-r)}; the restore stops`);
    const fd = remote.sys.with(what).socket(AF_PACKET, e.type, htons(e.protocol));
    try {
      applySocketOptions(remote, fd, e.opts, what);
      const set = (opt: number, value: Buffer, name: string) => {
        remote.resetData();
        const r = remote.sysRaw.setsockopt(fd, SOL_PACKET, opt, value, value.length);
        remote.resetData();
        if (r < 0) throw fail(`setsockopt(${name})`, r);
      };
      const int = (v: number) => {
        const b = Buffer.alloc(4);
        b.writeUInt32LE(v >>> 0, 0);
        return b;
      };
      if (e.ifindex) {
        remote.resetData();
        const r = remote.sysRaw.bind(fd, sockaddrLl(e.protocol, e.ifindex), 20);
        remote.resetData();
        if (r === -19 /* ENODEV */) throw new AmberError(`pid ${task.pid}: ${what}: interface ${e.ifindex} does not exist in this network namespace; the restore stops`);
        if (r < 0) throw fail('bind', r);
      }
      if (e.version) set(PACKET_OPT.VERSION, int(e.version), 'PACKET_VERSION');
      if (e.reserve) set(PACKET_OPT.RESERVE, int(e.reserve), 'PACKET_RESERVE');
      if (e.auxData) set(PACKET_OPT.AUXDATA, int(1), 'PACKET_AUXDATA');
      if (e.origDev) set(PACKET_OPT.ORIGDEV, int(1), 'PACKET_ORIGDEV');
      if (e.vnetHdr) set(PACKET_OPT.VNET_HDR, int(1), 'PACKET_VNET_HDR');
      if (e.loss) set(PACKET_OPT.LOSS, int(1), 'PACKET_LOSS');
      if (e.timestamp) set(PACKET_OPT.TIMESTAMP, int(e.timestamp), 'PACKET_TIMESTAMP');
      if (e.copyThresh) set(PACKET_OPT.COPY_THRESH, int(e.copyThresh), 'PACKET_COPY_THRESH');
      for (const m of e.mclist) for (let i = 0; i < (m.count ?? 1); i++) set(PACKET_OPT.ADD_MEMBERSHIP, packetMreq(m), 'PACKET_ADD_MEMBERSHIP');
      if (e.fanout !== undefined && e.fanout !== NO_FANOUT) set(PACKET_OPT.FANOUT, int(e.fanout), 'PACKET_FANOUT');
      setStatusFlags(remote, fd, e.flags);
      return fd;
    } catch (err) {
      remote.sysRaw.close(fd);
      throw err;
    }
  }

  compareDescription(live: FdResource, e: PacketSockEntry): FieldDifference[] {
    const rec = packetSockets(live.pid).get(socketInode(live));
    if (!rec) return [{ what: 'packet socket', expected: describePacket(e), actual: `${live.link}, unknown to sock_diag` }];
    const now = entryOf(rec);
    const out: FieldDifference[] = [];
    const diff = (what: string, expected: unknown, actual: unknown) => void (String(expected) !== String(actual) && out.push({ what, expected: String(expected), actual: String(actual) }));
    diff('type', kindName(e.type), kindName(now.type));
    diff('protocol', ethProto(e.protocol), ethProto(now.protocol));
    diff('interface', e.ifindex, now.ifindex);
    for (const k of ['version', 'reserve', 'auxData', 'origDev', 'vnetHdr', 'loss', 'timestamp', 'copyThresh'] as const) diff(k, e[k], now[k]);
    diff('fanout', (e.fanout ?? NO_FANOUT).toString(16), (now.fanout ?? NO_FANOUT).toString(16));
    const mc = (l: PacketMclist[]) => l.map((m) => `${m.index}/${m.type}/${m.addr.toString('hex')}x${m.count ?? 1}`).sort().join(' ');
    diff('memberships', mc(e.mclist), mc(now.mclist));
    diff('flags', `0${(e.flags & O.NONBLOCK).toString(8)}`, `0${(live.info.flags & O.NONBLOCK).toString(8)}`);
    const copy = takeFd(live.pid, live.fd);
    try {
      out.push(...compareSocketOptions(readSocketOptions(copy), e.opts));
    } finally {
      close(copy);
    }
    return out;
  }
}
