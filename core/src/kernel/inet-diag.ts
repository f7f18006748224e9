import { AF, SOCK, socket } from './sockets';
import { close } from './syscalls';
import { NETLINK_SOCK_DIAG, sockDiagExchange } from './sock-diag-netlink';

// NETLINK_SOCK_DIAG for inet sockets (linux/inet_diag.h): state, both endpoints, queue lengths,
// bound device, shutdown, owner and memory of every TCP/UDP/UDP-lite/raw socket of amber's network
// namespace. The kernel looks a single socket up by its 4-tuple, not by inode, so a socket is
// found by dumping its family and protocol and picking the inode (as CRIU does).

export const IPPROTO = { IP: 0, ICMP: 1, TCP: 6, UDP: 17, IPV6: 41, ICMPV6: 58, UDPLITE: 136, RAW: 255 } as const;

/** The kernel's sk_state numbers for TCP (also used for UDP: 1 connected, 7 not). */
export const TCP_STATE = {
  ESTABLISHED: 1, SYN_SENT: 2, SYN_RECV: 3, FIN_WAIT1: 4, FIN_WAIT2: 5, TIME_WAIT: 6, CLOSE: 7,
  CLOSE_WAIT: 8, LAST_ACK: 9, LISTEN: 10, CLOSING: 11, NEW_SYN_RECV: 12,
} as const;

export function tcpStateName(state: number): string {
  return Object.entries(TCP_STATE).find(([, v]) => v === state)?.[0] ?? `state ${state}`;
}

/** Attribute types of an inet_diag answer (INET_DIAG_*). */
const ATTR = { MEMINFO: 1, INFO: 2, TOS: 5, TCLASS: 6, SKMEMINFO: 7, SHUTDOWN: 8, PROTOCOL: 10, SKV6ONLY: 11, MARK: 15, MD5SIG: 18, ULP_INFO: 19 } as const;
const INET_ULP_INFO_NAME = 1;
/** idiag_ext asks for the attributes numbered 1..8, bit (n - 1) each. */
const ALL_EXT = 0xff;

export interface InetDiagRecord {
  family: number;
  protocol: number;
  /** TCP_STATE.* */
  state: number;
  inode: number;
  uid: number;
  /** Network-order address bytes (4 or 16) and ports. */
  src: Buffer;
  dst: Buffer;
  srcPort: number;
  dstPort: number;
  /** Bound device (SO_BINDTODEVICE or an IPv6 scope), 0 for none. */
  ifIndex: number;
  /**
   * TCP: bytes not yet read and not yet acknowledged; a listener: connections waiting to be
   * accepted and its backlog. UDP: memory queued to read and to send.
   */
  rqueue: number;
  wqueue: number;
  /** SHUTDOWN_MASK bits (RCV 1, SEND 2). */
  shutdown: number;
  /** sk_meminfo (SK_MEMINFO_*: rmem_alloc, rcvbuf, wmem_alloc, sndbuf, ...). */
  skmeminfo: number[];
  tos?: number;
  tclass?: number;
  v6only?: boolean;
  mark?: number;
  /** Raw sockets: the protocol they were opened with. */
  rawProtocol?: number;
  /** TCP: the upper-layer protocol on the socket (kTLS's "tls", "mptcp" ...), which TCP repair knows nothing of. */
  ulp?: string;
  /** TCP: the socket has TCP-MD5 signature keys. */
  md5sig?: boolean;
  /** TCP: struct tcp_info as the kernel filled it (INET_DIAG_INFO). */
  tcpInfo?: Buffer;
  /** Retransmissions and the pending timer (1 retransmit, 2 keepalive, 3 TIME_WAIT, 4 probe). */
  timer: number;
  retrans: number;
}

function request(family: number, protocol: number, states: number, rawProtocol: number): Buffer {
  // inet_diag_req_v2
  const req = Buffer.alloc(56);
  req.writeUInt8(family, 0);
  req.writeUInt8(protocol, 1);
  req.writeUInt8(ALL_EXT, 2);
  // sdiag_raw_protocol: which raw sockets (IPPROTO_RAW: all of them)
  req.writeUInt8(protocol === IPPROTO.RAW ? rawProtocol : 0, 3);
  req.writeUInt32LE(states >>> 0, 4);
  // id: ports, addresses, interface 0 (any); cookie "none"
  req.writeUInt32LE(0xffffffff, 48);
  req.writeUInt32LE(0xffffffff, 52);
  return req;
}

/** INET_ULP_INFO_NAME out of the nested INET_DIAG_ULP_INFO attribute. */
function ulpName(body: Buffer): string {
  for (let at = 0; at + 4 <= body.length;) {
    const len = body.readUInt16LE(at);
    if (len < 4) break;
    if ((body.readUInt16LE(at + 2) & 0x3fff) === INET_ULP_INFO_NAME) return body.subarray(at + 4, at + len).toString().replace(/\0.*$/s, '');
    at += (len + 3) & ~3;
  }
  return 'unknown';
}

function parseRecord(msg: Buffer, protocol: number): InetDiagRecord {
  // inet_diag_msg: family, state, timer, retrans (u8 each), sockid (48), expires, rqueue, wqueue, uid, inode
  const family = msg.readUInt8(0);
  const alen = family === AF.INET6 ? 16 : 4;
  const rec: InetDiagRecord = {
    family, protocol, state: msg.readUInt8(1), timer: msg.readUInt8(2), retrans: msg.readUInt8(3),
    srcPort: msg.readUInt16BE(4), dstPort: msg.readUInt16BE(6),
    src: Buffer.from(msg.subarray(8, 8 + alen)), dst: Buffer.from(msg.subarray(24, 24 + alen)),
    ifIndex: msg.readUInt32LE(40), rqueue: msg.readUInt32LE(56), wqueue: msg.readUInt32LE(60),
    uid: msg.readUInt32LE(64), inode: msg.readUInt32LE(68), shutdown: 0, skmeminfo: [],
  };
  for (let at = 72; at + 4 <= msg.length;) {
    const len = msg.readUInt16LE(at);
    const type = msg.readUInt16LE(at + 2) & 0x3fff;
    if (len < 4) break;
    const body = msg.subarray(at + 4, at + len);
    switch (type) {
      case ATTR.SKMEMINFO: for (let i = 0; i + 4 <= body.length; i += 4) rec.skmeminfo.push(body.readUInt32LE(i)); break;
      case ATTR.SHUTDOWN: rec.shutdown = body.readUInt8(0); break;
      case ATTR.TOS: rec.tos = body.readUInt8(0); break;
      case ATTR.TCLASS: rec.tclass = body.readUInt8(0); break;
      case ATTR.SKV6ONLY: rec.v6only = body.readUInt8(0) !== 0; break;
      case ATTR.MARK: rec.mark = body.readUInt32LE(0); break;
      case ATTR.PROTOCOL: rec.rawProtocol = body.readUInt8(0); break;
      case ATTR.INFO: rec.tcpInfo = Buffer.from(body); break;
      case ATTR.MD5SIG: rec.md5sig = true; break;
      case ATTR.ULP_INFO: rec.ulp = ulpName(body); break;
    }
    at += (len + 3) & ~3;
  }
  return rec;
}

/** Every socket of one family and protocol in amber's network namespace. */
export function inetSocketList(family: number, protocol: number, opts: { states?: number; rawProtocol?: number } = {}): InetDiagRecord[] {
  const nl = socket(AF.NETLINK, SOCK.DGRAM | SOCK.CLOEXEC, NETLINK_SOCK_DIAG);
  try {
    const body = request(family, protocol, opts.states ?? 0xffffffff, opts.rawProtocol ?? IPPROTO.RAW);
    const answers = sockDiagExchange(nl, { body, dump: true, what: 'sock_diag (inet)', detail: `family ${family} protocol ${protocol}` });
    return answers.map((a) => parseRecord(a, protocol));
  } finally {
    close(nl);
  }
}

/** One inet socket by inode, of a known family and protocol; undefined when the kernel lists none. */
export function inetSocket(family: number, protocol: number, inode: number): InetDiagRecord | undefined {
  return inetSocketList(family, protocol).find((r) => r.inode === inode);
}

/** tcp_info fields amber reads (offsets in struct tcp_info, linux/tcp.h). */
export const TCP_INFO_OFFSET = { STATE: 0, OPTIONS: 5, WSCALE: 6, SND_MSS: 16, RCV_MSS: 20 } as const;
/** tcpi_options bits. */
export const TCPI_OPT = { TIMESTAMPS: 1, SACK: 2, WSCALE: 4, ECN: 8 } as const;
