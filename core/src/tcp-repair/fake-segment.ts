import { addressOf, syscall } from '../kernel/libc';
import { SYS } from '../kernel/constants';
import { AF, SOCK, SOL_SOCKET, setsockoptInt, socket } from '../kernel/sockets';
import { close } from '../kernel/syscalls';
import { sockaddrInet, type InetEndpoint } from '../kernel/sockaddr-inet';

// A TCP segment amber writes itself, headers and all, through a raw socket: a restored half-closed
// connection must have received its peer's FIN (or the ACK of its own), and the only way into the
// kernel's state is a segment from the peer — which, addressed to a local address, never leaves
// the machine.

/**
 * SO_MARK of amber's own segments (CRIU's soccr uses the same): a network lock lets them through
 * while it holds the connection's real traffic off.
 */
export const FAKE_SEGMENT_MARK = '0xc114';
const SO_MARK = 36;

export const TH = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10 } as const;
const IPPROTO_TCP = 6;
const IPPROTO_RAW = 255;
const SOCK_RAW = 3;

export interface FakeSegment {
  from: InetEndpoint;
  to: InetEndpoint;
  seq: number;
  ack: number;
  flags: number;
  window: number;
}

function checksum(parts: Buffer[]): number {
  let sum = 0;
  for (const b of parts) {
    for (let i = 0; i + 1 < b.length; i += 2) sum += b.readUInt16BE(i);
    if (b.length & 1) sum += b[b.length - 1] << 8;
  }
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return ~sum & 0xffff;
}

function tcpHeader(s: FakeSegment): Buffer {
  const h = Buffer.alloc(20);
  h.writeUInt16BE(s.from.port, 0);
  h.writeUInt16BE(s.to.port, 2);
  h.writeUInt32BE(s.seq >>> 0, 4);
  h.writeUInt32BE(s.ack >>> 0, 8);
  h.writeUInt8(5 << 4, 12);
  h.writeUInt8(s.flags, 13);
  h.writeUInt16BE(s.window & 0xffff, 14);
  return h;
}

/** Sends the segment (IP header included) to its destination, a local address. */
export function sendFakeSegment(s: FakeSegment): void {
  const tcp = tcpHeader(s);
  let packet: Buffer;
  if (s.from.family === AF.INET) {
    const pseudo = Buffer.alloc(12);
    s.from.addr.copy(pseudo, 0);
    s.to.addr.copy(pseudo, 4);
    pseudo.writeUInt8(IPPROTO_TCP, 9);
    pseudo.writeUInt16BE(tcp.length, 10);
    tcp.writeUInt16BE(checksum([pseudo, tcp]), 16);
    const ip = Buffer.alloc(20);
    ip.writeUInt8(0x45, 0);
    ip.writeUInt16BE(20 + tcp.length, 2);
    ip.writeUInt8(64, 8);
    ip.writeUInt8(IPPROTO_TCP, 9);
    s.from.addr.copy(ip, 12);
    s.to.addr.copy(ip, 16);
    // the kernel fills the IP header checksum of a raw packet
    packet = Buffer.concat([ip, tcp]);
  } else {
    const pseudo = Buffer.alloc(40);
    s.from.addr.copy(pseudo, 0);
    s.to.addr.copy(pseudo, 16);
    pseudo.writeUInt32BE(tcp.length, 32);
    pseudo.writeUInt8(IPPROTO_TCP, 39);
    tcp.writeUInt16BE(checksum([pseudo, tcp]), 16);
    const ip = Buffer.alloc(40);
    ip.writeUInt32BE(0x60000000, 0);
    ip.writeUInt16BE(tcp.length, 4);
    ip.writeUInt8(IPPROTO_TCP, 6);
    ip.writeUInt8(64, 7);
    s.from.addr.copy(ip, 8);
    s.to.addr.copy(ip, 24);
    packet = Buffer.concat([ip, tcp]);
  }
  const raw = socket(s.from.family, SOCK_RAW | SOCK.CLOEXEC, IPPROTO_RAW);
  try {
    setsockoptInt(raw, SOL_SOCKET, SO_MARK, Number(FAKE_SEGMENT_MARK), 'setsockopt(SO_MARK)');
    const dst = sockaddrInet({ ...s.to, port: 0 });
    syscall('sendto(raw TCP segment)', SYS.sendto, [raw, addressOf(packet), packet.length, 0, addressOf(dst), dst.length]);
  } finally {
    close(raw);
  }
}
