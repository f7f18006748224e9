// Generated from plugins/unix/proto/sk-unix.proto by `npm run protos` (scripts/protos.js): do not edit.
import type { FownEntry, SkOptsEntry } from '@amber/core';

export interface FilePermsEntry {
  mode: number;
  uid: number;
  gid: number;
}

export const SkShutdown = {
  NONE: 0,
  READ: 1,
  WRITE: 2,
  BOTH: 3,
} as const;

export interface UnixSkEntry {
  id: number;
  /** the socket's inode: peers name each other by it */
  ino: number;
  type: number;
  state: number;
  /** open flags of the description (O_NONBLOCK ...) */
  flags: number;
  /** 1: the peer is outside the tree (--ext-unix-sk) */
  uflags: number;
  backlog: number;
  peer: number;
  fown: FownEntry;
  opts: SkOptsEntry;
  /** a path, or an abstract name with its leading NUL; empty when unbound */
  name: Buffer;
  /** SkShutdown */
  shutdown?: number;
  filePerms?: FilePermsEntry;
  /** a relative name was bound in this directory */
  nameDir?: string;
  /** the bound path no longer names the socket */
  deleted?: boolean;
  /** amber: a connection not yet accepted, queued on this listener (its inode) */
  queuedOn?: number;
  /** amber: accepted from this listener (its inode): it carries the listener's name */
  acceptedFrom?: number;
  peekOff?: number;
  /** amber: the name of a peer outside the tree */
  peerName?: Buffer;
  /** amber: the socket file as bound (sock_diag's UNIX_DIAG_VFS) */
  vfsDev?: number;
  vfsIno?: number;
  /** amber: a listener's connections not yet accepted, oldest first (their connecting ends) */
  icons: number[];
  /** amber: bytes queued to read (stream, seqpacket) or the first record's length (datagram) */
  rqlen?: number;
}
