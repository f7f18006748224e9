import { readlinkSync } from 'node:fs';
import {
  AmberError, MSG, SCM, SO, SOCK, SOL_SOCKET, close, errnoName, getsockoptInt, recvmsg, setsockoptInt,
  type DumpContext, type DumpTask, type RestoreContext, type RestoreTask,
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
 * Files in flight: peeking installed them in amber; each is dumped by its kind as one more
 * description of the tree (the same description as any fd of the tree that holds it). amber keeps
 * them open until the dump ends, so no fd number of its own stands for two files.
 */
function inFlight(ctx: DumpContext, task: DumpTask, fds: number[], where: string): number[] {
  const kept = heldInFlight(ctx);
  kept.push(...fds);
  return fds.map((fd) => {
    if (readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:[')) {
      throw new UnixQueueError(`${where}: its queue holds a socket in flight (SCM_RIGHTS), which amber does not dump yet; nothing was changed`);
    }
    return ctx.describeFile(task, process.pid, fd);
  });
}

/** amber's own copies of the files in flight, closed once the dump is over. */
const heldInFlight = (ctx: DumpContext) => stateOf(ctx, 'in-flight', () => [] as number[]);

export function releaseInFlight(ctx: DumpContext): void {
  for (const fd of heldInFlight(ctx).splice(0)) close(fd);
}

/**
 * The queue of the socket behind amber's fd `copy`. The peek offset is the task's: it is moved
 * to 0 for the walk and put back. Returns the socket's own peek offset (-1: off).
 */
export function peekQueue(ctx: DumpContext, task: DumpTask, copy: number, e: UnixSkEntry, where: string): number {
  const peekOff = getsockoptInt(copy, SOL_SOCKET, SO.PEEK_OFF);
  setsockoptInt(copy, SOL_SOCKET, SO.PEEK_OFF, 0);
  const out: Queued[] = [];
  try {
    for (;;) {
      const m = recvmsg(copy, e.type === SOCK.STREAM ? STREAM_PIECE : RECORD_ROOM, MSG.PEEK | MSG.DONTWAIT | MSG.CMSG_CLOEXEC);
      if (!m) break;
      const rights = inFlight(ctx, task, m.fds, where);
      if (m.flags & MSG.TRUNC || m.length > m.data.length) throw new UnixQueueError(`${where}: a queued record of more than ${RECORD_ROOM} bytes; nothing was changed`);
      if (m.flags & MSG.CTRUNC) throw new UnixQueueError(`${where}: a queued record carries more control data than amber reads; nothing was changed`);
      if (e.type === SOCK.STREAM && m.data.length === 0) break;
      const entry: SkPacketEntry = { idFor: e.id, length: m.data.length, scm: rights.length ? [{ type: SCM.RIGHTS, rights }] : [] };
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
