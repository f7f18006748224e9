import { KernelError } from './errors';
import { AF, SOCK, socket } from './sockets';
import { close } from './syscalls';
import { NETLINK_SOCK_DIAG, sockDiagExchange } from './sock-diag-netlink';

// NETLINK_SOCK_DIAG for AF_UNIX (linux/unix_diag.h): what the kernel knows of every unix socket
// of amber's network namespace — peers, queues, names, listeners' pending connections — that
// neither /proc/net/unix nor getsockopt tells.

export const UDIAG_SHOW = {
  NAME: 0x01, VFS: 0x02, PEER: 0x04, ICONS: 0x08, RQLEN: 0x10, MEMINFO: 0x20, SHUTDOWN: 0x40, UID: 0x80,
} as const;
const UNIX_DIAG = { NAME: 0, VFS: 1, PEER: 2, ICONS: 3, RQLEN: 4, MEMINFO: 5, SHUTDOWN: 6, UID: 7 } as const;

/** TCP-like states the kernel reports for unix sockets. */
export const UNIX_STATE = { ESTABLISHED: 1, CLOSE: 7, LISTEN: 10 } as const;

/** sk_meminfo indices (SK_MEMINFO_*). */
export const SK_MEMINFO = { RMEM_ALLOC: 0, RCVBUF: 1, WMEM_ALLOC: 2, SNDBUF: 3 } as const;

export interface UnixDiagRecord {
  inode: number;
  /** SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET. */
  type: number;
  /** UNIX_STATE.* */
  state: number;
  /** The bound name: a path or an abstract name (leading NUL); absent when unbound. */
  name?: Buffer;
  /** For a name on the file system: the socket file's device and inode, as bound. */
  vfs?: { dev: number; ino: number };
  /** Inode of the connected peer (0: none). */
  peer: number;
  /** A listener's connections not yet accepted: the inodes of their connecting ends. */
  icons: number[];
  /** Listener: pending connections and backlog; other sockets: bytes queued to read, and to be read by the peer. */
  rqlen: number;
  wqlen: number;
  meminfo: number[];
  /** SHUTDOWN_MASK bits (RCV 1, SEND 2): a direction shut by this socket or its peer. */
  shutdown: number;
  uid?: number;
}

const ALL_SHOW = Object.values(UDIAG_SHOW).reduce((a, b) => a | b, 0);

function request(inode: number, show: number): Buffer {
  // unix_diag_req
  const req = Buffer.alloc(24);
  req.writeUInt8(AF.UNIX, 0);
  req.writeUInt32LE(0xffffffff, 4); // udiag_states: all
  req.writeUInt32LE(inode, 8);
  req.writeUInt32LE(show, 12);
  // a single-socket query must name the socket's cookie or pass "no cookie" (~0, ~0)
  req.writeUInt32LE(0xffffffff, 16);
  req.writeUInt32LE(0xffffffff, 20);
  return req;
}

/** A path as bound may carry its NUL (it counts in the address length); an abstract name is kept whole. */
function unixName(raw: Buffer): Buffer {
  const nul = raw[0] === 0 ? -1 : raw.indexOf(0);
  return Buffer.from(nul < 0 ? raw : raw.subarray(0, nul));
}

function parseRecord(msg: Buffer): UnixDiagRecord {
  // unix_diag_msg: family u8, type u8, state u8, pad u8, ino u32, cookie u32[2]
  const rec: UnixDiagRecord = {
    inode: msg.readUInt32LE(4), type: msg.readUInt8(1), state: msg.readUInt8(2),
    peer: 0, icons: [], rqlen: 0, wqlen: 0, meminfo: [], shutdown: 0,
  };
  for (let at = 16; at + 4 <= msg.length;) {
    const len = msg.readUInt16LE(at);
    const type = msg.readUInt16LE(at + 2);
    if (len < 4) break;
    const body = msg.subarray(at + 4, at + len);
    switch (type) {
      case UNIX_DIAG.NAME: rec.name = unixName(body); break;
      case UNIX_DIAG.VFS: rec.vfs = { ino: body.readUInt32LE(0), dev: body.readUInt32LE(4) }; break;
      case UNIX_DIAG.PEER: rec.peer = body.readUInt32LE(0); break;
      case UNIX_DIAG.ICONS: for (let i = 0; i + 4 <= body.length; i += 4) rec.icons.push(body.readUInt32LE(i)); break;
      case UNIX_DIAG.RQLEN: rec.rqlen = body.readUInt32LE(0); rec.wqlen = body.readUInt32LE(4); break;
      case UNIX_DIAG.MEMINFO: for (let i = 0; i + 4 <= body.length; i += 4) rec.meminfo.push(body.readUInt32LE(i)); break;
      case UNIX_DIAG.SHUTDOWN: rec.shutdown = body.readUInt8(0); break;
      case UNIX_DIAG.UID: rec.uid = body.readUInt32LE(0); break;
    }
    at += (len + 3) & ~3;
  }
  return rec;
}

function query(inode: number, show: number): UnixDiagRecord[] {
  const nl = socket(AF.NETLINK, SOCK.DGRAM | SOCK.CLOEXEC, NETLINK_SOCK_DIAG);
  try {
    const answers = sockDiagExchange(nl, { body: request(inode, show), dump: !inode, what: 'sock_diag (unix)', detail: inode ? `socket inode ${inode}` : undefined });
    return answers.map(parseRecord);
  } finally {
    close(nl);
  }
}

/** Every unix socket of amber's network namespace, by inode. */
export function unixSockets(show = ALL_SHOW): Map<number, UnixDiagRecord> {
  return new Map(query(0, show).map((r) => [r.inode, r]));
}

/** One unix socket by inode; undefined when there is none (ENOENT). */
export function unixSocket(inode: number, show = ALL_SHOW): UnixDiagRecord | undefined {
  try {
    return query(inode, show)[0];
  } catch (e) {
    if (e instanceof KernelError && e.errnoName === 'ENOENT') return undefined;
    throw e;
  }
}
