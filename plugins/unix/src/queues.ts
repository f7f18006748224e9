import {
  AmberError, MSG, SCM, SO, SOCK, SOL_SOCKET, close, errnoName, getsockoptInt, recordSocketQueue, recvmsg, setsockoptInt, socketQueuesOf,
  type DumpContext, type DumpTask, type QueuedRecord, type ReceivedMessage, type RestoreContext, type RestoreTask, type SkPacketEntry,
} from '@amber/core';
import type { UnixSkEntry } from './images';
import { sendIn } from './remote';

// What waits in a socket's receive queue: read without consuming it (SO_PEEK_OFF + MSG_PEEK on
// amber's copy of the description), written back from the peer's end at restore.

/** Largest record amber peeks whole; a longer datagram is an error, never cut. */
const RECORD_ROOM = 1 << 20;
/** Stream data is moved in pieces of this size. */
const STREAM_PIECE = 64 * 1024;

export class UnixQueueError extends AmberError {}

/** A socket's queue as peeked, with the files in flight installed in amber. */
export interface PeekedQueue {
  messages: ReceivedMessage[];
  /** The socket's own peek offset (-1: off). */
  peekOff: number;
}

/** amber's own copies of the files in flight, closed once the dump is over. */
const heldInFlight = (ctx: DumpContext) => ctx.state('unix:in-flight', () => [] as number[]);

export function releaseInFlight(ctx: DumpContext): void {
  for (const fd of heldInFlight(ctx).splice(0)) close(fd);
}

/**
 * The queue of the socket behind amber's fd `copy`, left in place. The peek offset is the
 * task's: it is moved to 0 for the walk and put back. Files in flight that the peek installs in
 * amber stay open until the dump ends, so no fd number of amber's stands for two files.
 */
export function peekQueue(ctx: DumpContext, copy: number, type: number, where: string): PeekedQueue {
  const peekOff = getsockoptInt(copy, SOL_SOCKET, SO.PEEK_OFF);
  setsockoptInt(copy, SOL_SOCKET, SO.PEEK_OFF, 0);
  const messages: ReceivedMessage[] = [];
  try {
    for (;;) {
      const m = recvmsg(copy, type === SOCK.STREAM ? STREAM_PIECE : RECORD_ROOM, MSG.PEEK | MSG.DONTWAIT | MSG.CMSG_CLOEXEC);
      if (!m) break;
      heldInFlight(ctx).push(...m.fds);
      if (m.flags & MSG.TRUNC || m.length > m.data.length) throw new UnixQueueError(`${where}: a queued record of more than ${RECORD_ROOM} bytes; nothing was changed`);
      if (m.flags & MSG.CTRUNC) throw new UnixQueueError(`${where}: a queued record carries more control data than amber reads; nothing was changed`);
      if (type === SOCK.STREAM && m.data.length === 0) break;
      messages.push(m);
    }
  } finally {
    setsockoptInt(copy, SOL_SOCKET, SO.PEEK_OFF, peekOff);
  }
  return { messages, peekOff };
}

/**
 * Writes a peeked queue into sk-queues.img for socket e. Each file in flight is dumped by its
 * kind as one more description of the tree (the same one as any fd of the tree that holds it).
 */
export function recordQueue(ctx: DumpContext, task: DumpTask, e: UnixSkEntry, queue: PeekedQueue): void {
  const records: QueuedRecord[] = queue.messages.map((m) => {
    const rights = m.fds.map((fd) => ctx.describeFile(task, process.pid, fd));
    const entry: SkPacketEntry = { idFor: e.id, length: m.data.length, scm: rights.length ? [{ type: SCM.RIGHTS, rights }] : [] };
    if (m.name.length) entry.addr = m.name;
    if (m.creds) entry.ucred = m.creds;
    ctx.count('unix queued bytes', m.data.length);
    return { entry, data: m.data };
  });
  recordSocketQueue(ctx, records);
}

/** The dumped queues, by the id of the socket they are queued to (the core's sk-queues.img). */
export const queuesOf = (ctx: RestoreContext): Map<number, QueuedRecord[]> => socketQueuesOf(ctx);

/**
 * Refills socket `e`'s queue by sending from `sender` (the peer end, or an unbound socket that
 * addresses `to`). Records go one sendmsg each, so their boundaries stay; credentials go as they
 * were received.
 */
export function fillQueue(ctx: RestoreContext, e: UnixSkEntry, task: RestoreTask, sender: number, to: Buffer | undefined, where: string): void {
  const remote = task.remote;
  for (const { entry, data } of queuesOf(ctx).get(e.id) ?? []) {
    const fds = entry.scm.filter((s) => s.type === SCM.RIGHTS).flatMap((s) => s.rights).map((id) => ctx.openFile(task, id));
    const pieces = e.type === SOCK.STREAM ? Math.max(1, Math.ceil(data.length / STREAM_PIECE)) : 1;
    for (let i = 0; i < pieces; i++) {
      const part = e.type === SOCK.STREAM ? data.subarray(i * STREAM_PIECE, (i + 1) * STREAM_PIECE) : data;
      // the files go with the first piece, as they came with the first byte of the record
      const r = sendIn(remote, sender, part, { to, creds: entry.ucred, fds: i === 0 ? fds : [] });
      if (r < 0) throw new UnixQueueError(`${where}: refilling its queue failed: ${errnoName(-r)} after ${i} of ${pieces} piece(s)`);
      if (r !== part.length) throw new UnixQueueError(`${where}: refilling its queue took ${r} of ${part.length} bytes`);
    }
  }
}
