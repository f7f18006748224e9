import { sockDiagDump } from './netlink-diag';
import { diagAttributes } from './sock-diag-netlink';

// NETLINK_SOCK_DIAG for AF_PACKET (linux/packet_diag.h): a packet socket's binding, version,
// options, multicast list, rings and fanout, which getsockopt tells only in part (PACKET_FANOUT
// reads back, the membership list and the ring sizes do not).

export const AF_PACKET = 17;
export const SOL_PACKET = 263;
/** setsockopt(SOL_PACKET) options. */
export const PACKET_OPT = {
  ADD_MEMBERSHIP: 1, DROP_MEMBERSHIP: 2, RX_RING: 5, COPY_THRESH: 7, AUXDATA: 8, ORIGDEV: 9, VERSION: 10,
  RESERVE: 12, TX_RING: 13, LOSS: 14, TIMESTAMP: 17, FANOUT: 18, VNET_HDR: 15,
} as const;
/** PACKET_DIAG_INFO's pdi_flags. */
export const PDI = { RUNNING: 1, AUXDATA: 2, ORIGDEV: 4, VNETHDR: 8, LOSS: 0x10 } as const;

const PACKET_SHOW = { INFO: 1, MCLIST: 2, RING_CFG: 4, FANOUT: 8, MEMINFO: 0x10 } as const;
const PACKET_DIAG = { INFO: 0, MCLIST: 1, RX_RING: 2, TX_RING: 3, FANOUT: 4, MEMINFO: 6 } as const;

export interface PacketRing {
  blockSize: number; blockNr: number; frameSize: number; frameNr: number; retireTmo: number; sizeofPriv: number; features: number;
}

export interface PacketMembership {
  ifindex: number;
  /** PACKET_MR_MULTICAST 0, PROMISC 1, ALLMULTI 2, UNICAST 3. */
  type: number;
  count: number;
  addr: Buffer;
}

export interface PacketDiagRecord {
  inode: number;
  /** SOCK_RAW or SOCK_DGRAM. */
  type: number;
  /** ETH_P_* as a number (the kernel answers it in host order; socket(2) and bind take it in network order). */
  protocol: number;
  ifindex: number;
  version: number;
  reserve: number;
  copyThresh: number;
  tstamp: number;
  /** PDI bits. */
  flags: number;
  mclist: PacketMembership[];
  rxRing?: PacketRing;
  txRing?: PacketRing;
  /** PACKET_FANOUT's value (id | type << 16 | flags): absent when not in a fanout group. */
  fanout?: number;
  meminfo: number[];
}

function ring(b: Buffer | undefined): PacketRing | undefined {
  if (!b || b.length < 28) return undefined;
  const w = (i: number) => b.readUInt32LE(4 * i);
  return { blockSize: w(0), blockNr: w(1), frameSize: w(2), frameNr: w(3), retireTmo: w(4), sizeofPriv: w(5), features: w(6) };
}

function parsePacket(msg: Buffer): PacketDiagRecord {
  // packet_diag_msg: family u8, type u8, num u16, ino u32, cookie[2]
  const rec: PacketDiagRecord = {
    type: msg.readUInt8(1), protocol: msg.readUInt16LE(2), inode: msg.readUInt32LE(4),
    ifindex: 0, version: 0, reserve: 0, copyThresh: 0, tstamp: 0, flags: 0, mclist: [], meminfo: [],
  };
  const attrs = diagAttributes(msg, 16);
  const info = attrs.get(PACKET_DIAG.INFO);
  if (info && info.length >= 24) {
    Object.assign(rec, {
      ifindex: info.readUInt32LE(0), version: info.readUInt32LE(4), reserve: info.readUInt32LE(8),
      copyThresh: info.readUInt32LE(12), tstamp: info.readUInt32LE(16), flags: info.readUInt32LE(20),
    });
  }
  const mc = attrs.get(PACKET_DIAG.MCLIST);
  // packet_diag_mclist: index u32, count u32, type u16, alen u16, addr[32]
  for (let at = 0; mc && at + 44 <= mc.length; at += 44) {
    const alen = mc.readUInt16LE(at + 10);
    rec.mclist.push({ ifindex: mc.readUInt32LE(at), count: mc.readUInt32LE(at + 4), type: mc.readUInt16LE(at + 8), addr: Buffer.from(mc.subarray(at + 12, at + 12 + Math.min(alen, 32))) });
  }
  rec.rxRing = ring(attrs.get(PACKET_DIAG.RX_RING));
  rec.txRing = ring(attrs.get(PACKET_DIAG.TX_RING));
  const fanout = attrs.get(PACKET_DIAG.FANOUT);
  if (fanout && fanout.length >= 4) rec.fanout = fanout.readUInt32LE(0);
  const mem = attrs.get(PACKET_DIAG.MEMINFO);
  for (let i = 0; mem && i + 4 <= mem.length; i += 4) rec.meminfo.push(mem.readUInt32LE(i));
  return rec;
}

/** Every packet socket of pid's network namespace, by inode. */
export function packetSockets(pid: number): Map<number, PacketDiagRecord> {
  // packet_diag_req: family u8, protocol u8, pad u16, ino u32, show u32, cookie[2]
  const body = Buffer.alloc(20);
  body.writeUInt8(AF_PACKET, 0);
  body.writeUInt32LE(PACKET_SHOW.INFO | PACKET_SHOW.MCLIST | PACKET_SHOW.RING_CFG | PACKET_SHOW.FANOUT | PACKET_SHOW.MEMINFO, 8);
  body.writeUInt32LE(0xffffffff, 12);
  body.writeUInt32LE(0xffffffff, 16);
  return new Map(sockDiagDump(pid, body, 'sock_diag (packet)').map(parsePacket).map((r) => [r.inode, r]));
}
