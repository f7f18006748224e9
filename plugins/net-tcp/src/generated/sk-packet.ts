// Generated from plugins/net-tcp/proto/sk-packet.proto by `npm run protos` (scripts/protos.js): do not edit.
import type { FownEntry, SkOptsEntry } from '@amber/core';

/** One PACKET_ADD_MEMBERSHIP: the interface, PACKET_MR_* type and the link-layer address. */
export interface PacketMclist {
  index: number;
  type: number;
  addr: Buffer;
  /** amber: how many times it was added (each needs its own drop) */
  count?: number;
}

export interface PacketRing {
  blockSize: number;
  blockNr: number;
  frameSize: number;
  frameNr: number;
  retireTmo: number;
  sizeofPriv: number;
  features: number;
}

export interface PacketSockEntry {
  id: number;
  /** SOCK_RAW (3) or SOCK_DGRAM (2) */
  type: number;
  /** ETH_P_* as a number (socket(2) takes it in network byte order) */
  protocol: number;
  flags: number;
  /** the interface it is bound to; 0: every interface */
  ifindex: number;
  fown: FownEntry;
  opts: SkOptsEntry;
  /** PACKET_VERSION: TPACKET_V1 0, V2 1, V3 2 */
  version: number;
  reserve: number;
  auxData: boolean;
  origDev: boolean;
  vnetHdr: boolean;
  loss: boolean;
  timestamp: number;
  copyThresh: number;
  mclist: PacketMclist[];
  /** PACKET_FANOUT's value (group id | type << 16); 0xffffffff: no fanout group */
  fanout?: number;
  rxRing?: PacketRing;
  txRing?: PacketRing;
}
