import {
  AmberError, FdType, SOCK, UNIX_STATE, describeUnixName,
  type FdinfoEntry, type FileKind, type RestoreContext, type RestoreTask,
} from '@amber/core';
import { USK_EXTERN, type UnixSkEntry } from './images';
import { kindName } from './peers';
import { queuesOf } from './queues';

// What a restore knows of the dump's unix sockets, and how far each one has come. Sockets are
// rebuilt in the fd table's steps (open: create, bind, listen; post-open: connect, fill queues,
// shut down); one socket's step may need another socket's earlier one first (an accepted socket
// needs its listener and client, a queue its sender connected), so every step here is done once,
// on demand, whoever asks first. Each socket stays parked in the task that made it until the fd
// table is done, so any later step can reach it, also from another task or when it is in flight.

export class UnixRestoreError extends AmberError {}

export const keyOf = (e: UnixSkEntry) => `usk:${e.id}`;
export const inheritedKey = (e: UnixSkEntry) => `socket:[${e.ino}]`;
export const where = (task: RestoreTask, e: UnixSkEntry) => `pid ${task.pid}, unix ${kindName(e.type)} socket socket:[${e.ino}]`;

export interface Plan {
  /** Every socket of the dump but those handed in with --inherit-fd, and held by a task or in flight. */
  sockets: UnixSkEntry[];
  byIno: Map<number, UnixSkEntry>;
  /** The task a socket is made in: its first holder, or for one in flight, where the queue carrying it lives. */
  home: Map<number, RestoreTask>;
  /** Sockets some fd table holds: the core runs their post-open step; the others are in flight. */
  inTable: Set<number>;
  /** The far end of a connection whose peer had been closed, by socket id: it goes once the queue is filled. */
  closedMates: Map<number, string>;
  /** Both ends of a socketpair made, by socket id. */
  paired: Set<number>;
  /** The steps done so far, by socket id. */
  connected: Set<number>;
  filled: Set<number>;
  finished: Set<number>;
}

export function planOf(ctx: RestoreContext, kind: FileKind<UnixSkEntry>): Plan {
  return ctx.state('unix:plan', () => {
    const inherited = new Set((ctx.options.inheritFds ?? []).map((i) => i.key));
    const sockets = ctx.files.entries().filter((d) => d.type === FdType.UNIXSK).map((d) => ctx.files.entry(kind, d.id))
      .filter((e) => !inherited.has(inheritedKey(e)));
    const ids = new Set(sockets.map((e) => e.id));
    const home = new Map<number, RestoreTask>();
    const tables = new Set<number>();
    for (const t of ctx.tasks) {
      if (tables.has(t.ids.filesId)) continue;
      tables.add(t.ids.filesId);
      for (const f of ctx.store.read<FdinfoEntry>('fdinfo', `fdinfo-${t.ids.filesId}`).entries) if (ids.has(f.id) && !home.has(f.id)) home.set(f.id, t);
    }
    const inTable = new Set(home.keys());
    // a socket in flight is made where the socket whose queue carries it lives; its sender fetches it
    for (let more = true; more;) {
      more = false;
      for (const [idFor, packets] of queuesOf(ctx)) {
        const at = home.get(idFor);
        if (!at) continue;
        for (const id of packets.flatMap((p) => p.entry.scm.flatMap((scm) => scm.rights))) {
          if (ids.has(id) && !home.has(id)) {
            home.set(id, at);
            more = true;
          }
        }
      }
    }
    const plan: Plan = {
      sockets: sockets.filter((e) => home.has(e.id)), byIno: new Map(sockets.map((e) => [e.ino, e])), home, inTable,
      closedMates: new Map(), paired: new Set(), connected: new Set(), filled: new Set(), finished: new Set(),
    };
    refuseOutsidePeers(ctx, plan);
    return plan;
  });
}

/** A peer outside the tree that cannot be reached again is refused before any socket is made. */
function refuseOutsidePeers(ctx: RestoreContext, plan: Plan): void {
  for (const e of plan.sockets) {
    if (!(e.uflags & USK_EXTERN)) continue;
    const peer = describeUnixName(e.peerName ?? Buffer.alloc(0));
    const at = where(plan.home.get(e.id)!, e);
    if (e.type !== SOCK.DGRAM || !e.peerName?.length) {
      throw new UnixRestoreError(
        `${at} was connected to ${peer} outside the tree: a connection to another process ` +
          `cannot be remade; hand one in with --inherit-fd fd[N]:${inheritedKey(e)} (N: an fd of amber's for it)`,
      );
    }
    if (!ctx.options.extUnixSk) {
      throw new UnixRestoreError(`${at} was connected to ${peer} outside the tree (dumped with --ext-unix-sk): restore with --ext-unix-sk to reconnect it, or --inherit-fd fd[N]:${inheritedKey(e)}`);
    }
  }
}

/** Where a socket made so far is parked: to use it in place. */
export function parkedSocket(ctx: RestoreContext, e: UnixSkEntry): { task: RestoreTask; fd: number } {
  const p = ctx.fds.parkedAt(keyOf(e));
  if (!p) throw new UnixRestoreError(`unix socket socket:[${e.ino}] was not made (internal)`);
  return p;
}

export function homeOf(plan: Plan, e: UnixSkEntry): RestoreTask {
  const task = plan.home.get(e.id);
  if (!task) throw new UnixRestoreError(`unix socket socket:[${e.ino}] is held by no task and in no queue of the images`);
  return task;
}

/** Two ends of one connection, neither taken from a listener: one socketpair, made by the first holder. */
export function pairable(plan: Plan, e: UnixSkEntry): UnixSkEntry | undefined {
  const peer = plan.byIno.get(e.peer);
  if (!peer || peer.peer !== e.ino || !plan.home.has(peer.id)) return undefined;
  if (e.acceptedFrom || peer.acceptedFrom || e.queuedOn || peer.queuedOn) return undefined;
  return peer;
}

/** A connected socket whose peer had been closed: remade as a socketpair whose far end goes after the refill. */
export const peerGone = (plan: Plan, e: UnixSkEntry) =>
  e.type !== SOCK.DGRAM && e.state === UNIX_STATE.ESTABLISHED && !plan.byIno.has(e.peer) && !e.queuedOn && !(e.uflags & USK_EXTERN) && !pairable(plan, e);

/**
 * The socket that refills e's queue: the peer of a connection, or for a datagram socket the first
 * socket connected to it (none: a fresh unbound socket addresses it by name).
 */
export function senderOf(plan: Plan, e: UnixSkEntry): UnixSkEntry | undefined {
  if (e.type !== SOCK.DGRAM) return plan.byIno.get(e.peer);
  return plan.sockets.find((s) => s.peer === e.ino && s.id !== e.id);
}
