import {
  F, SOCK, UNIX_STATE, describeUnixName, errnoName, fetchFd,
  type RestoreContext, type RestoreTask,
} from '@amber/core';
import type { UnixSkEntry } from './images';
import { bindName, isPathName, pathOf } from './names';
import { applyOptions } from './options';
import { connectRaw, socketIn, socketpairIn } from './remote';
import { homeOf, keyOf, pairable, parkedSocket, peerGone, UnixRestoreError, where, type Plan } from './restore-plan';

// The open step of a unix socket (CRIU's open_unix_sk): create it — a socketpair for two ends
// connected to each other — bind its name, listen, set its options. An accepted socket is the
// exception: it can only come out of accept(2), so its open step connects its client and
// accepts it (post-open would be too late: the core puts the socket at its fd numbers, in every
// task that holds it, right after the open step, and would have nothing to put there).

/** The address to reach a bound socket by (relative names through their directory). */
export const addressOf = (e: UnixSkEntry) => (isPathName(e.name) ? Buffer.from(pathOf(e)) : e.name);

export function connectTo(ctx: RestoreContext, e: UnixSkEntry, name: Buffer, what: string): void {
  const { task, fd } = parkedSocket(ctx, e);
  const r = connectRaw(task.remote, fd, name);
  if (r < 0) throw new UnixRestoreError(`${where(task, e)}: cannot connect to ${what} ${describeUnixName(name)}: ${errnoName(-r)}`);
}

/** Makes socket e, once, in its home task, and leaves it parked there; returns where it is. */
export function madeSocket(ctx: RestoreContext, plan: Plan, e: UnixSkEntry): { task: RestoreTask; fd: number } {
  const done = ctx.fds.parkedAt(keyOf(e));
  if (done) return done;
  const task = homeOf(plan, e);
  if (e.acceptedFrom) return accepted(ctx, plan, e);
  const type = e.type | SOCK.CLOEXEC;
  const peer = pairable(plan, e);
  if (peer) {
    const [a, b] = socketpairIn(task.remote, type, where(task, e));
    ctx.fds.park(task, keyOf(e), a);
    ctx.fds.park(task, keyOf(peer), b);
    plan.paired.add(peer.id).add(e.id);
    nameAndListen(ctx, peer);
  } else if (peerGone(plan, e)) {
    const [a, b] = socketpairIn(task.remote, type, where(task, e));
    ctx.fds.park(task, keyOf(e), a);
    const mate = `usk-mate:${e.id}`;
    ctx.fds.park(task, mate, b);
    plan.closedMates.set(e.id, mate);
  } else {
    ctx.fds.park(task, keyOf(e), socketIn(task.remote, type, where(task, e)));
  }
  nameAndListen(ctx, e);
  return parkedSocket(ctx, e);
}

function nameAndListen(ctx: RestoreContext, e: UnixSkEntry): void {
  const { task, fd } = parkedSocket(ctx, e);
  if (e.name.length) bindName(task, fd, e);
  if (e.state === UNIX_STATE.LISTEN) task.remote.sys.with(where(task, e)).listen(fd, e.backlog);
  applyOptions(task.remote, fd, e.opts, where(task, e));
}

/**
 * A connection accepted at dump time: its client connects and the listener accepts at once, so
 * the socket accepted is the one that client reached. Every accepted socket of a listener is made
 * before its first connection still waiting is (post-open.ts), or accept would take that one.
 */
function accepted(ctx: RestoreContext, plan: Plan, e: UnixSkEntry): { task: RestoreTask; fd: number } {
  const listener = plan.byIno.get(e.acceptedFrom!);
  const client = plan.byIno.get(e.peer);
  if (!listener || !client || !plan.home.has(client.id)) throw new UnixRestoreError(`unix socket socket:[${e.ino}]: its listener or client is missing from the images`);
  const l = madeSocket(ctx, plan, listener);
  madeSocket(ctx, plan, client);
  connectTo(ctx, client, addressOf(listener), 'its listener');
  const fd = l.task.remote.sys.with(where(l.task, listener)).accept4(l.fd, 0, 0, SOCK.CLOEXEC);
  const parked = ctx.fds.park(l.task, keyOf(e), fd);
  applyOptions(l.task.remote, parked, e.opts, where(homeOf(plan, e), e));
  return { task: l.task, fd: parked };
}

/** An fd of task's own for parked socket e (the parked one stays, for the later steps). */
export function handOut(ctx: RestoreContext, task: RestoreTask, e: UnixSkEntry): number {
  const { task: owner, fd } = parkedSocket(ctx, e);
  if (owner === task) return task.remote.sys.with(where(task, e)).fcntl(fd, F.DUPFD_CLOEXEC, 0);
  return fetchFd(task.remote, owner.pid, fd);
}
