import { readlinkSync } from 'node:fs';
import {
  AmberError, NO_FOWN, O, SOCK, UNIX_STATE, close, getpeernameUnix, getsocknameUnix, takeFd, unixSockets,
  type DumpContext, type DumpTask, type FdResource, type UnixDiagRecord,
} from '@amber/core';
import { USK_EXTERN, type UnixSkEntry } from './images';
import { describeName } from './names';
import { ownerOf } from './owner';
import { readOptions } from './options';
import { externalPeerError, kindName, listenerAccepting, listenerQueuing } from './peers';
import { peekQueue, recordQueue, UnixQueueError, type PeekedQueue } from './queues';

export const socketInode = (fd: FdResource) => Number(fd.ino);

interface TreeSockets {
  all: Map<number, UnixDiagRecord>;
  /** Sockets the tree holds: by an fd, or in flight in a queue of one of them. */
  tree: Map<number, UnixDiagRecord>;
  /** Every queue of those sockets, peeked once (a queue is read before its files in flight are known). */
  queues: Map<number, PeekedQueue>;
}

const hasQueue = (rec: UnixDiagRecord) => rec.type === SOCK.DGRAM || rec.state === UNIX_STATE.ESTABLISHED;

/**
 * sock_diag's view of every unix socket, once per dump, and those the tree holds. Every queue is
 * peeked first: a socket in flight belongs to the tree too, and its peer must not look external.
 */
function socketsOf(ctx: DumpContext): TreeSockets {
  return ctx.state('unix:diag', () => {
    const all = unixSockets();
    const tree = new Map<number, UnixDiagRecord>();
    const queues = new Map<number, PeekedQueue>();
    const peek = (rec: UnixDiagRecord, copy: number, where: string) => {
      if (queues.has(rec.inode) || !hasQueue(rec)) return;
      const q = peekQueue(ctx, copy, rec.type, where);
      queues.set(rec.inode, q);
      for (const m of q.messages) {
        for (const f of m.fds) {
          const inFlight = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${f}`));
          const r = inFlight && all.get(Number(inFlight[1]));
          if (!r) continue;
          tree.set(r.inode, r);
          peek(r, f, `socket:[${r.inode}] in flight`);
        }
      }
    };
    for (const t of ctx.tasks) {
      for (const fd of t.fds) {
        const m = /^socket:\[(\d+)\]$/.exec(fd.link);
        const rec = m && all.get(Number(m[1]));
        if (!rec) continue;
        tree.set(rec.inode, rec);
        if (!hasQueue(rec) || queues.has(rec.inode)) continue;
        const copy = takeFd(t.pid, fd.fd);
        try {
          peek(rec, copy, `fd ${fd.fd} of pid ${t.pid} (unix ${kindName(rec.type)} socket)`);
        } finally {
          close(copy);
        }
      }
    }
    return { all, tree, queues };
  });
}

/** Every fact of one unix socket description: sock_diag, and amber's own copy of it for the rest. */
export function dumpUnixSocket(ctx: DumpContext, task: DumpTask, fd: FdResource, id: number): UnixSkEntry {
  const where = `fd ${fd.fd} of pid ${task.pid}`;
  const { all, tree, queues } = socketsOf(ctx);
  const rec = all.get(socketInode(fd));
  if (!rec) throw new AmberError(`${where}: sock_diag does not know unix socket ${fd.link} (another network namespace?)`);
  const copy = takeFd(fd.pid, fd.fd);
  try {
    const name = getsocknameUnix(copy);
    const e: UnixSkEntry = {
      id, ino: rec.inode, type: rec.type, state: rec.state, flags: fd.info.flags & ~O.CLOEXEC, uflags: 0,
      backlog: rec.state === UNIX_STATE.LISTEN ? rec.wqlen : 0, peer: rec.peer, fown: ownerOf(task.pid, copy) ?? NO_FOWN,
      opts: readOptions(copy), icons: [], ...describeName(task.pid, fd.fd, name, rec),
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
    const queue = queues.get(rec.inode);
    if (queue) {
      recordQueue(ctx, task, e, queue);
      if (queue.peekOff >= 0) e.peekOff = queue.peekOff;
    }
    ctx.count('unix sockets', 1);
    return e;
  } finally {
    close(copy);
  }
}
