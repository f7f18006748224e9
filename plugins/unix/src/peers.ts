import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { AmberError, SOCK, UNIX_STATE, describeUnixName, type UnixDiagRecord } from '@amber/core';

// Who a socket is connected to: a socket of the tree, a listener of the tree that has not accepted
// it yet, or a process outside the tree.

export const kindName = (type: number) => (type === SOCK.STREAM ? 'stream' : type === SOCK.DGRAM ? 'datagram' : type === SOCK.SEQPACKET ? 'seqpacket' : `type ${type}`);

export class ExternalPeerError extends AmberError {}

/** Which process holds socket inode ino (scanned only to name it in an error). */
function holderOf(ino: number): string {
  const link = `socket:[${ino}]`;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      for (const fd of readdirSync(`/proc/${pid}/fd`)) {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === link) return `pid ${pid} (${readFileSync(`/proc/${pid}/comm`, 'utf8').trim()})`;
      }
    } catch {
      // gone, or not ours to read
    }
  }
  return 'no process amber can see';
}

export function externalPeerError(pid: number, fd: number, rec: UnixDiagRecord, peer: UnixDiagRecord | undefined): ExternalPeerError {
  const peerName = peer?.name ? describeUnixName(peer.name) : 'unnamed';
  return new ExternalPeerError(
    `fd ${fd} of pid ${pid} is a unix ${kindName(rec.type)} socket connected to socket:[${rec.peer}] (${peerName}, held by ${holderOf(rec.peer)}) outside the dumped tree; ` +
      'nothing was changed and the process keeps running (--ext-unix-sk dumps it: a datagram socket is reconnected to that name at restore, ' +
      `any other needs --inherit-fd fd[N]:socket:[${rec.inode}] then)`,
  );
}

/** The listener of the tree on whose queue this socket's connection waits, unaccepted. */
export function listenerQueuing(rec: UnixDiagRecord, tree: Map<number, UnixDiagRecord>): UnixDiagRecord | undefined {
  for (const l of tree.values()) if (l.state === UNIX_STATE.LISTEN && l.icons.includes(rec.inode)) return l;
  return undefined;
}

/** The listener of the tree an established socket was accepted from: it carries the listener's name. */
export function listenerAccepting(rec: UnixDiagRecord, tree: Map<number, UnixDiagRecord>): UnixDiagRecord | undefined {
  if (rec.type === SOCK.DGRAM || rec.state !== UNIX_STATE.ESTABLISHED || !rec.name?.length) return undefined;
  for (const l of tree.values()) {
    if (l.state !== UNIX_STATE.LISTEN || !l.name || !l.name.equals(rec.name)) continue;
    if (rec.vfs && l.vfs && rec.vfs.ino !== l.vfs.ino) continue;
    return l;
  }
  return undefined;
}
