import { addressOf, syscall, syscallRaw } from './libc';
import { SYS } from './constants';
import { KernelError } from './errors';

// The NETLINK_SOCK_DIAG exchange every sock_diag client shares (unix, inet, netlink, packet):
// one SOCK_DIAG_BY_FAMILY request, then answers until NLMSG_DONE or an NLMSG_ERROR.

export const NETLINK_SOCK_DIAG = 4;
const SOCK_DIAG_BY_FAMILY = 20;
const NLM_F_REQUEST = 1;
const NLM_F_DUMP = 0x300;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const NLMSG_HDRLEN = 16;
const EINTR = 4;

export interface SockDiagRequest {
  /** The request after the nlmsghdr (unix_diag_req, inet_diag_req_v2 ...). */
  body: Buffer;
  /** Every matching socket (NLM_F_DUMP), or one looked up by what the body names. */
  dump: boolean;
  /** For errors: what was asked (`sock_diag (unix)`), of which pid, about what. */
  what: string;
  pid?: number;
  detail?: string;
}

/** Sends one request on `nl` (a NETLINK_SOCK_DIAG socket) and returns each answer's body. */
export function sockDiagExchange(nl: number, req: SockDiagRequest): Buffer[] {
  const msg = Buffer.alloc(NLMSG_HDRLEN + req.body.length);
  msg.writeUInt32LE(msg.length, 0);
  msg.writeUInt16LE(SOCK_DIAG_BY_FAMILY, 4);
  msg.writeUInt16LE(NLM_F_REQUEST | (req.dump ? NLM_F_DUMP : 0), 6);
  req.body.copy(msg, NLMSG_HDRLEN);
  syscall(`sendto(${req.what})`, SYS.sendto, [nl, addressOf(msg), msg.length, 0, 0, 0], { pid: req.pid, detail: req.detail });
  const out: Buffer[] = [];
  const buf = Buffer.alloc(64 * 1024);
  for (;;) {
    const n = syscallRaw(SYS.recvfrom, [nl, addressOf(buf), buf.length, 0, 0, 0]);
    if (n === -EINTR) continue;
    if (n < 0) throw new KernelError(`recvfrom(${req.what})`, -n, req.pid, req.detail);
    for (let at = 0; at + NLMSG_HDRLEN <= n;) {
      const len = buf.readUInt32LE(at);
      const type = buf.readUInt16LE(at + 4);
      if (len < NLMSG_HDRLEN || type === NLMSG_DONE) return out;
      if (type === NLMSG_ERROR) {
        const err = -buf.readInt32LE(at + NLMSG_HDRLEN);
        if (err === 0) return out;
        throw new KernelError(req.what, err, req.pid, req.detail);
      }
      if (type === SOCK_DIAG_BY_FAMILY) out.push(Buffer.from(buf.subarray(at + NLMSG_HDRLEN, at + len)));
      at += (len + 3) & ~3;
    }
    // a lookup of one socket gets its answer and no NLMSG_DONE
    if (!req.dump && out.length) return out;
  }
}

/** The netlink attributes after a fixed header of `from` bytes: type -> body. */
export function diagAttributes(msg: Buffer, from: number): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  for (let at = from; at + 4 <= msg.length;) {
    const len = msg.readUInt16LE(at);
    if (len < 4) break;
    out.set(msg.readUInt16LE(at + 2) & 0x3fff, msg.subarray(at + 4, at + len));
    at += (len + 3) & ~3;
  }
  return out;
}
