import {
  AmberError, NO_FOWN, O, SOCK, UNIX_STATE, close, getpeernameUnix, getsocknameUnix, takeFd, unixSockets,
  type DumpContext, type DumpTask, type FdResource, type UnixDiagRecord,
} from '@amber/core';
import { stateOf, USK_EXTERN, type UnixSkEntry } from './images';
import { describeName } from './names';
import { ownerOf } from './owner';
import { readOptions } from './options';
import { externalPeerError, kindName, listenerAccepting, listenerQueuing } from './peers';
import { peekQueue, UnixQueueError } from './queues';

export const socketInode = (fd: FdResource) => Number(fd.ino);

/** sock_diag's view of every unix socket, once per dump, and those the tree holds. */
function socketsOf(ctx: DumpContext): { all: Map<number, UnixDiagRecord>; tree: Map<number, UnixDiagRecord> } {
  return stateOf(ctx, 'diag', () => {
    const all = unixSockets();
    const tree = new Map<number, UnixDiagRecord>();
    for (const t of ctx.tasks) {
      for (const fd of t.fds) {
        const m = /^socket:\[(\d+)\]$/.exec(fd.link);
        const rec = m && all.get(Number(m[1]));
        if (rec) tree.set(rec.inode, rec);
      }
    }
    return { all, tree };
  });
}

/** Every fact of one unix socket description: sock_diag, and amber's own copy of it for the rest. */
export function dumpUnixSocket(ctx: DumpContext, task: DumpTask, fd: FdResource, id: number): UnixSkEntry {
  const where = `fd ${fd.fd} of pid ${task.pid}`;
  const { all, tree } = socketsOf(ctx);
  const rec = all.get(socketInode(fd));
  if (!rec) throw new AmberError(`${where}: sock_diag does not know unix socket ${fd.link} (another network namespace?)`);
  const copy = takeFd(task.pid, fd.fd);
  try {
    const name = getsocknameUnix(copy);
    const e: UnixSkEntry = {
      id, ino: rec.inode, type: rec.type, state: rec.state, flags: fd.info.flags & ~O.CLOEXEC, uflags: 0,
      backlog: rec.state === UNIX_STATE.LISTEN ? rec.wqlen : 0, peer: rec.peer, fown: ownerOf(task.pid, copy) ?? NO_FOWN,
      opts: readOptions(copy), ...describeName(task.pid, fd.fd, name, rec),
    };
    if (rec.shutdown) e.shutdown = rec.shutdown;
    if (rec.state !== UNIX_STATE.LISTEN) e.rqlen = rec.rqlen;
    if (rec.state === UNIX_STATE.LISTEN && rec.icons.length) e.icons = rec.icons;
    // a connection not accepted yet has for peer a socket no fd holds: sock_diag gives it inode 0
    const listener = listenerQueuing(rec, tree);
    const outsideListener = listener ? undefined : listenerQueuing(rec, all);
    if (outsideListener && !ctx.options.extUnixSk) throw externalPeerError(task.pid, fd.fd, { ...rec, peer: outsideListener.inode }, outsideListener);
    if (outsideListener) {
      e.uflags |= USK_EXTERN;
      if (outsideListener.name) e.peerName = outsideListener.name;
    }
    if (!outsideListener && (listener || (rec.peer && !tree.has(rec.peer)))) {
      if (listener) {
        // the connection waits on a listener of the tree: what this end sent sits in a socket
        // no fd reaches, which amber cannot read without accepting it
        if (rec.wqlen) throw new UnixQueueError(`${where}: its connection to ${listener.name ? 'the listener' : 'a listener'} of the tree is not accepted yet and holds ${rec.wqlen} byte(s) sent to it; nothing was changed`);
        e.queuedOn = listener.inode;
      } else {
        const peer = all.get(rec.peer);
        if (!ctx.options.extUnixSk) throw externalPeerError(task.pid, fd.fd, rec, peer);
        // CRIU's --ext-unix-sk: a datagram socket is reconnected to its peer's name at restore;
        // any other connection needs a replacement handed in with --inherit-fd
        e.uflags |= USK_EXTERN;
        const peerName = getpeernameUnix(copy) ?? peer?.name;
        if (peerName?.length) e.peerName = peerName;
      }
    }
    const from = listenerAccepting(rec, tree);
    if (from) e.acceptedFrom = from.inode;
    if (rec.type === SOCK.DGRAM || rec.state === UNIX_STATE.ESTABLISHED) {
      const peekOff = peekQueue(ctx, task, copy, e, `${where} (unix ${kindName(rec.type)} socket)`);
      if (peekOff >= 0) e.peekOff = peekOff;
    }
    ctx.count('unix sockets', 1);
    return e;
  } finally {
    close(copy);
  }
}
