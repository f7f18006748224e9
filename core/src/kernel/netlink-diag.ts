import { AF, SOCK } from './sockets';
import { diagAttributes, NETLINK_SOCK_DIAG, sockDiagExchange } from './sock-diag-netlink';
import { close } from './syscalls';
import { socketInNetnsOf } from './netns';

// NETLINK_SOCK_DIAG for AF_NETLINK (linux/netlink_diag.h): every netlink socket of a network
// namespace with its protocol, port id, peer, multicast groups and flags. The kernel answers
// netlink and packet queries only as dumps (a request for one inode is EOPNOTSUPP), so a caller
// takes the whole namespace's list and picks its sockets from it.

/** One sock_diag dump in pid's network namespace: the request's body (after the nlmsghdr), each answer's body. */
export function sockDiagDump(pid: number, body: Buffer, what: string): Buffer[] {
  const nl = socketInNetnsOf(pid, AF.NETLINK, SOCK.DGRAM | SOCK.CLOEXEC, NETLINK_SOCK_DIAG);
  try {
    return sockDiagExchange(nl, { body, dump: true, what, pid });
  } finally {
    close(nl);
  }
}

export const NETLINK = { ROUTE: 0, SOCK_DIAG: 4, AUDIT: 9, KOBJECT_UEVENT: 15, GENERIC: 16 } as const;
export const SOL_NETLINK = 270;
/** setsockopt(SOL_NETLINK) options. */
export const NETLINK_OPT = {
  ADD_MEMBERSHIP: 1, DROP_MEMBERSHIP: 2, PKTINFO: 3, BROADCAST_ERROR: 4, NO_ENOBUFS: 5,
  LISTEN_ALL_NSID: 8, LIST_MEMBERSHIPS: 9, CAP_ACK: 10, EXT_ACK: 11, GET_STRICT_CHK: 12,
} as const;
/** NETLINK_DIAG_FLAGS bits. */
export const NDIAG_FLAG = { CB_RUNNING: 1, PKTINFO: 2, BROADCAST_ERROR: 4, NO_ENOBUFS: 8, LISTEN_ALL_NSID: 0x10, CAP_ACK: 0x20 } as const;
/** sk_state of a netlink socket: connected once it has a default destination. */
export const NETLINK_STATE = { UNCONNECTED: 0, CONNECTED: 1 } as const;

const NDIAG_SHOW = { MEMINFO: 1, GROUPS: 2, RING_CFG: 4, FLAGS: 8 } as const;
const NETLINK_DIAG = { MEMINFO: 0, GROUPS: 1, RX_RING: 2, TX_RING: 3, FLAGS: 4 } as const;
const NDIAG_PROTO_ALL = 255;

export interface NetlinkDiagRecord {
  inode: number;
  /** SOCK_RAW or SOCK_DGRAM (the same thing to netlink). */
  type: number;
  protocol: number;
  state: number;
  portid: number;
  dstPortid: number;
  dstGroup: number;
  /** Multicast groups joined, numbered from 1 as NETLINK_ADD_MEMBERSHIP takes them. */
  groups: number[];
  /** NDIAG_FLAG bits. */
  flags: number;
  /** sk_meminfo words (SK_MEMINFO_RMEM_ALLOC first: bytes queued to read). */
  meminfo: number[];
  /** A mapped ring (NETLINK_RX_RING / TX_RING, kernels before 4.4). */
  ring: boolean;
}

function parseNetlink(msg: Buffer): NetlinkDiagRecord {
  // netlink_diag_msg: family u8, type u8, protocol u8, state u8, portid, dst_portid, dst_group, ino, cookie[2]
  const rec: NetlinkDiagRecord = {
    type: msg.readUInt8(1), protocol: msg.readUInt8(2), state: msg.readUInt8(3),
    portid: msg.readUInt32LE(4), dstPortid: msg.readUInt32LE(8), dstGroup: msg.readUInt32LE(12), inode: msg.readUInt32LE(16),
    groups: [], flags: 0, meminfo: [], ring: false,
  };
  const attrs = diagAttributes(msg, 28);
  const groups = attrs.get(NETLINK_DIAG.GROUPS);
  // a bitmap of longs: bit n is group n + 1
  for (let byte = 0; groups && byte < groups.length; byte++) {
    for (let bit = 0; bit < 8; bit++) if (groups[byte] & (1 << bit)) rec.groups.push(byte * 8 + bit + 1);
  }
  const flags = attrs.get(NETLINK_DIAG.FLAGS);
  if (flags && flags.length >= 4) rec.flags = flags.readUInt32LE(0);
  const mem = attrs.get(NETLINK_DIAG.MEMINFO);
  for (let i = 0; mem && i + 4 <= mem.length; i += 4) rec.meminfo.push(mem.readUInt32LE(i));
  rec.ring = attrs.has(NETLINK_DIAG.RX_RING) || attrs.has(NETLINK_DIAG.TX_RING);
  return rec;
}

/**
 * Every netlink socket of pid's network namespace that the kernel lists, by inode. An unbound
 * socket that never sent (port id 0) and has no groups is in no table the kernel walks: it is
 * missing here, and that absence is what says it is unbound.
 */
export function netlinkSockets(pid: number): Map<number, NetlinkDiagRecord> {
  // netlink_diag_req: family u8, protocol u8, pad u16, ino u32, show u32, cookie[2]
  const body = Buffer.alloc(20);
  body.writeUInt8(AF.NETLINK, 0);
  body.writeUInt8(NDIAG_PROTO_ALL, 1);
  body.writeUInt32LE(NDIAG_SHOW.MEMINFO | NDIAG_SHOW.GROUPS | NDIAG_SHOW.RING_CFG | NDIAG_SHOW.FLAGS, 8);
  body.writeUInt32LE(0xffffffff, 12);
  body.writeUInt32LE(0xffffffff, 16);
  return new Map(sockDiagDump(pid, body, 'sock_diag (netlink)').map(parseNetlink).map((r) => [r.inode, r]));
}
