// Generated from plugins/net-tcp/proto/sk-netlink.proto by `npm run protos` (scripts/protos.js): do not edit.
import type { FownEntry, SkOptsEntry } from '@amber/core';

/** NETLINK_* socket options that are on/off switches. */
export interface NlSkOptsEntry {
  pktinfo: boolean;
  broadcastError: boolean;
  noEnobufs: boolean;
  listenAllNsid: boolean;
  capAck: boolean;
  /** amber: NETLINK_EXT_ACK and NETLINK_GET_STRICT_CHK */
  extAck?: boolean;
  getStrictChk?: boolean;
}

export interface NetlinkSkEntry {
  id: number;
  ino: number;
  /** NETLINK_ROUTE 0, SOCK_DIAG 4, AUDIT 9, KOBJECT_UEVENT 15, GENERIC 16 ... */
  protocol: number;
  /** sk_state: 1 connected (a default destination), 7 not */
  state: number;
  /** open flags (O_NONBLOCK ...) */
  flags: number;
  /** the bound port id; 0: not bound */
  portid: number;
  /** the multicast groups as a bitmap of 32-bit words: bit n of word w is group 32 * w + n + 1 */
  groups: number[];
  dstPortid: number;
  dstGroup: number;
  fown: FownEntry;
  opts: SkOptsEntry;
  nsId?: number;
  nlOpts?: NlSkOptsEntry;
  /** amber: SOCK_RAW (3) or SOCK_DGRAM (2), as it was created */
  type?: number;
  /** amber: bytes that were queued to read at dump time (not kept: see netlink.ts) */
  rqlen?: number;
}
