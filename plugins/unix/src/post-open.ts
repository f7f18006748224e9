import {
  SHUTDOWN_MASK, SHUT, SO, SOCK, SOL_SOCKET, UNIX_STATE,
  type RestoreContext,
} from '@amber/core';
import { USK_EXTERN, type UnixSkEntry } from './images';
import { unlinkDeleted } from './names';
import { addressOf, connectTo, madeSocket } from './open-socket';
import { fillQueue, queuesOf } from './queues';
import { socketIn } from './remote';
import { parkedSocket, senderOf, UnixRestoreError, where, type Plan } from './restore-plan';

// The post-open step of a unix socket (CRIU's post_open_unix_sk), once every socket of every task
// is bound: connect, connect what waits on a listener, fill the queues, set the peek offset, shut
// down, unlink a name since deleted. Each part that needs another socket's part first (a queue
// needs its sender connected; a shutdown, the queues on both sides filled; an unlink, every connect
// to the name) asks for it, and each part is done once.

/** Runs socket e's post-open step, once: for a socket of an fd table, or one in flight. */
export function finishSocket(ctx: RestoreContext, plan: Plan, e: UnixSkEntry): void {
  if (plan.finished.has(e.id)) return;
  plan.finished.add(e.id);
  const { task, fd } = madeSocket(ctx, plan, e);
  connected(ctx, plan, e);
  if (e.queuedOn && !plan.byIno.has(e.queuedOn)) throw new UnixRestoreError(`unix socket socket:[${e.ino}]: its listener socket:[${e.queuedOn}] is missing from the images`);
  if (e.state === UNIX_STATE.LISTEN) connectWaiting(ctx, plan, e);
  filled(ctx, plan, e);
  // what this socket sends into goes before a shutdown can stop it
  for (const r of plan.sockets) if (r.id !== e.id && senderOf(plan, r)?.id === e.id) filled(ctx, plan, r);
  const remote = task.remote;
  if (e.peekOff !== undefined && e.peekOff >= 0) {
    remote.resetData();
    const v = Buffer.alloc(4);
    v.writeInt32LE(e.peekOff, 0);
    remote.sys.with(where(task, e)).setsockopt(fd, SOL_SOCKET, SO.PEEK_OFF, remote.stage(v), 4);
    remote.resetData();
  }
  const mate = plan.closedMates.get(e.id);
  if (mate) {
    // the peer had gone: its end is closed now, after it refilled the queue
    const owner = ctx.fds.parkedAt(mate)!.task;
    owner.remote.sys.close(ctx.fds.unpark(owner, mate)!);
  } else if (e.shutdown) {
    const bits = e.shutdown;
    const how = bits === (SHUTDOWN_MASK.RCV | SHUTDOWN_MASK.SEND) ? SHUT.RDWR : bits & SHUTDOWN_MASK.SEND ? SHUT.WR : SHUT.RD;
    remote.sys.with(where(task, e)).shutdown(fd, how);
  }
  if (e.deleted) {
    // a name deleted at dump time goes again once every connect to it is done
    for (const s of plan.sockets) if (s.type === SOCK.DGRAM && s.peer === e.ino) connected(ctx, plan, s);
    unlinkDeleted(e);
  }
}

/** A datagram socket connects to its peer (of the tree, by name, or outside it with --ext-unix-sk), once. */
function connected(ctx: RestoreContext, plan: Plan, e: UnixSkEntry): void {
  if (e.type !== SOCK.DGRAM || plan.paired.has(e.id) || plan.connected.has(e.id)) return;
  plan.connected.add(e.id);
  madeSocket(ctx, plan, e);
  // (planOf refused a peer outside the tree without --ext-unix-sk)
  if (e.uflags & USK_EXTERN) return connectTo(ctx, e, e.peerName ?? Buffer.alloc(0), 'its peer outside the tree');
  const peer = e.peer ? plan.byIno.get(e.peer) : undefined;
  if (!peer) return;
  if (!peer.name.length) throw new UnixRestoreError(`unix datagram socket socket:[${e.ino}] was connected to an unnamed socket that is not its pair`);
  madeSocket(ctx, plan, peer);
  connectTo(ctx, e, addressOf(peer), 'its peer');
}

/** The connections still waiting on listener l, in its order, after every one it had accepted. */
function connectWaiting(ctx: RestoreContext, plan: Plan, l: UnixSkEntry): void {
  for (const s of plan.sockets) if (s.acceptedFrom === l.ino) madeSocket(ctx, plan, s);
  const rank = (e: UnixSkEntry) => l.icons?.indexOf(e.ino) ?? 0;
  for (const e of plan.sockets.filter((s) => s.queuedOn === l.ino).sort((a, b) => rank(a) - rank(b))) {
    madeSocket(ctx, plan, e);
    connectTo(ctx, e, addressOf(l), 'its listener');
  }
}

/**
 * Refills socket e's queue, once, from its sender; the sockets in flight in it then get their
 * own post-open step (the core runs it only for the sockets of the fd tables).
 */
function filled(ctx: RestoreContext, plan: Plan, e: UnixSkEntry): void {
  if (plan.filled.has(e.id)) return;
  plan.filled.add(e.id);
  const queue = queuesOf(ctx).get(e.id);
  if (!queue?.length) return;
  const mine = madeSocket(ctx, plan, e);
  const what = where(mine.task, e);
  const mate = plan.closedMates.get(e.id);
  const sender = mate ? undefined : senderOf(plan, e);
  if (mate) {
    fillQueue(ctx, e, mine.task, ctx.fds.parkedAt(mate)!.fd, undefined, what);
  } else if (sender) {
    madeSocket(ctx, plan, sender);
    connected(ctx, plan, sender);
    const s = parkedSocket(ctx, sender);
    fillQueue(ctx, e, s.task, s.fd, undefined, what);
  } else {
    if (!e.name.length) throw new UnixRestoreError(`${what}: its queue has data but nothing can send to it (no peer, no name)`);
    const remote = mine.task.remote;
    const tmp = socketIn(remote, SOCK.DGRAM | SOCK.CLOEXEC, what);
    try {
      fillQueue(ctx, e, mine.task, tmp, addressOf(e), what);
    } finally {
      remote.sys.close(tmp);
    }
  }
  const carried = new Set(queue.flatMap((p) => p.entry.scm.flatMap((scm) => scm.rights)));
  for (const s of plan.sockets) if (carried.has(s.id) && !plan.inTable.has(s.id)) finishSocket(ctx, plan, s);
}
