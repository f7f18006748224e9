// Generated from plugins/net-tcp/proto/sk-inet.proto by `npm run protos` (scripts/protos.js): do not edit.
import type { DgramSkEntry } from './sk-dgram';
import type { FownEntry, SkOptsEntry } from '@amber/core';

export interface IpOptsRawEntry {
  hdrincl?: boolean;
  nodefrag?: boolean;
  checksum?: boolean;
  icmpvFilter: number[];
}

export interface IpOptsEntry {
  freebind?: boolean;
  raw?: IpOptsRawEntry;
  pktinfo?: boolean;
  tos?: number;
  ttl?: number;
}

export interface InetSkEntry {
  /** the open file description's id; ino is the socket's own inode (tcp-stream-<ino hex>.img) */
  id: number;
  ino: number;
  family: number;
  type: number;
  proto: number;
  /** TCP_* state numbers (TCP_ESTABLISHED = 1 ... TCP_LISTEN = 10), as the kernel's sk_state */
  state: number;
  srcPort: number;
  dstPort: number;
  /** open flags (O_NONBLOCK ...) */
  flags: number;
  backlog: number;
  /** one word for IPv4, four for IPv6, in network byte order as the kernel holds them */
  srcAddr: number[];
  dstAddr: number[];
  fown: FownEntry;
  opts: SkOptsEntry;
  v6only?: boolean;
  ipOpts?: IpOptsEntry;
  ifname?: string;
  nsId?: number;
  /** 0 none, 1 read, 2 write, 3 both (CRIU's sk_shutdown) */
  shutdown?: number;
  /** amber: TCP_NODELAY, TCP_CORK, TCP_USER_TIMEOUT */
  tcpOpts?: TcpSockOptsEntry;
  /** amber: a connection restored closed (--tcp-close) or skipped while being set up (--skip-in-flight) */
  amberClosed?: boolean;
  /** amber: the socket's owner (sock_diag's uid: who made it), given back to the restored one */
  amberUid?: number;
  /** amber: datagram sockets' memberships, options and queue (UDP, ping, raw) */
  dgram?: DgramSkEntry;
}

/** amber: TCP's own options (CRIU keeps cork and nodelay in tcp_stream_entry, for connections only) */
export interface TcpSockOptsEntry {
  nodelay?: boolean;
  cork?: boolean;
  userTimeout?: number;
}
