import {
  AmberError, MSG, SO, SOCK, SOL_SOCKET, close, errnoName, getsockoptInt, recvmsg, setsockoptInt,
  type DumpContext, type RemoteSyscall, type RestoreContext,
} from '@amber/core';
import { SK_QUEUES, stateOf, type SkPacketEntry, type UnixSkEntry } from './images';
import { sendIn } from './remote';

// What waits in a socket's receive queue: read without consuming it (SO_PEEK_OFF + MSG_PEEK on
// amber's copy of the description), written back from the peer's end at restore.

/** Largest record amber peeks whole; a longer datagram is an error, never cut. */
const RECORD_ROOM = 1 << 20;
/** Stream data is moved in pieces of this size. */
const STREAM_PIECE = 64 * 1024;

export class UnixQueueError extends AmberError {}

interface Queued {
  entry: SkPacketEntry;
  data: Buffer;
}

/**
 * The queue of the socket behind amber's fd `copy`. The peek offset is the task's: it is moved
 * to 0 for the walk and put back. Returns the socket's own peek offset (-1: off).
 */
export function peekQueue(ctx: DumpContext, copy: number, e: UnixSkEntry, where: string): number {
  const peekOff = getsockoptInt(copy, SOL_SOCKET, SO.PEEK_OFF);
  setsockoptInt(copy, SOL_SOCKET, SO.PEEK_OFF, 0);
  const out: Queued[] = [];
  try {
    for (;;) {
      const m = recvmsg(copy, e.type === SOCK.STREAM ? STREAM_PIECE : RECORD_ROOM, MSG.PEEK | MSG.DONTWAIT | MSG.CMSG_CLOEXEC);
      if (!m) break;
      for (const fd of m.fds) close(fd);
      if (m.fds.length) throw new UnixQueueError(`${where}: its queue holds file descriptors in flight (SCM_RIGHTS), which amber does not dump yet; nothing was changed`);
      if (m.flags & MSG.TRUNC || m.length > m.data.length) throw new UnixQueueError(`${where}: a queued record of more than ${RECORD_ROOM} bytes; nothing was changed`);
      if (e.type === SOCK.STREAM && m.data.length === 0) break;
      const entry: SkPacketEntry = { idFor: e.id, length: m.data.length, scm: [] };
      if (m.name.length) entry.addr = m.name;
      if (m.creds) entry.ucred = m.creds;
      out.push({ entry, data: m.data });
    }
  } finally {
    setsockoptInt(copy, SOL_SOCKET, SO.PEEK_OFF, peekOff);
  }
  if (out.length) {
    const all = stateOf(ctx, 'queues', () => ({ entries: [] as SkPacketEntry[], blobs: [] as Buffer[] }));
    for (const q of out) {
      all.entries.push(q.entry);
      all.blobs.push(q.data);
      ctx.count('unix queued bytes', q.data.length);
    }
    // the fd table is dumped after every plugin's dump step: the image is rewritten as it grows
    ctx.store.write(SK_QUEUES, SK_QUEUES, all.entries, { blobs: all.blobs });
  }
  return peekOff;
}

/** The dumped queues, by the id of the socket they are queued to. */
export function queuesOf(ctx: RestoreContext): Map<number, Queued[]> {
  return stateOf(ctx, 'queues-read', () => {
    const out = new Map<number, Queued[]>();
    if (!ctx.store.has(SK_QUEUES)) return out;
    const img = ctx.store.read<SkPacketEntry>(SK_QUEUES, SK_QUEUES);
    img.entries.forEach((entry, i) => {
      const list = out.get(entry.idFor) ?? [];
      list.push({ entry, data: img.blobs[i] ?? Buffer.alloc(0) });
      out.set(entry.idFor, list);
    });
    return out;
  });
}

/**
 * Refills socket `e`'s queue by sending from `sender` (the peer end, or an unbound socket that
 * addresses `to`). Records go one sendmsg each, so their boundaries stay; credentials go as they
 * were received.
 */
export function fillQueue(ctx: RestoreContext, e: UnixSkEntry, remote: RemoteSyscall, sender: number, to: Buffer | undefined, where: string): void {
  for (const { entry, data } of queuesOf(ctx).get(e.id) ?? []) {
    const pieces = e.type === SOCK.STREAM ? Math.max(1, Math.ceil(data.length / STREAM_PIECE)) : 1;
    for (let i = 0; i < pieces; i++) {
      const part = e.type === SOCK.STREAM ? data.subarray(i * STREAM_PIECE, (i + 1) * STREAM_PIECE) : data;
      const r = sendIn(remote, sender, part, { to, creds: entry.ucred });
      if (r < 0) throw new UnixQueueError(`${where}: refilling its queue failed: ${errnoName(-r)} after ${i} of ${pieces} piece(s)`);
      if (r !== part.length) throw new UnixQueueError(`${where}: refilling its queue took ${r} of ${part.length} bytes`);
    }
  }
}
