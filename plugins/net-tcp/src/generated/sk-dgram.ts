// Generated from plugins/net-tcp/proto/sk-dgram.proto by `npm run protos` (scripts/protos.js): do not edit.

/** One multicast group joined (MCAST_JOIN_GROUP / IP_ADD_MEMBERSHIP), any source. */
export interface McGroupEntry {
  ifindex: number;
  /** the group's address as the image keeps addresses: one word for IPv4, four for IPv6 */
  addr: number[];
}

export interface DgramSkEntry {
  mcGroups: McGroupEntry[];
  /** SO_PEEK_OFF as the program had it; absent: off (-1) */
  peekOff?: number;
  /** IP_MULTICAST_TTL / IPV6_MULTICAST_HOPS, IP(V6)_MULTICAST_LOOP, IP(V6)_MULTICAST_IF (an index) */
  mcTtl?: number;
  mcLoop?: boolean;
  mcIfindex?: number;
  /** IP_PKTINFO / IPV6_RECVPKTINFO, IP_RECVERR / IPV6_RECVERR */
  pktinfo?: boolean;
  recverr?: boolean;
  /** datagrams (and their bytes) in sk-queues.img for this socket */
  queued?: number;
  queuedBytes?: number;
  /** UDP-lite: UDPLITE_SEND_CSCOV / RECV_CSCOV */
  sendCscov?: number;
  recvCscov?: number;
  /** raw: IP_HDRINCL; ICMP_FILTER (IPv4) as its bitmask */
  hdrincl?: boolean;
  icmpFilter?: number;
  /** ping and raw: the peer connect() gave (getpeername does not tell it: these sockets have no port) */
  peerAddr: number[];
  /** how many of the queued datagrams are empty (see udp.ts: a peek hides them from the next one) */
  queuedEmpty?: number;
  /** raw ICMPv6: ICMP6_FILTER as the kernel holds it (256 bits, a set bit blocks that type) */
  icmp6Filter?: Buffer;
}
