import {
  AmberError, FdType, SHUTDOWN_MASK, SHUT, SOCK, UNIX_STATE, describeUnixName, errnoName,
  fetchFd, type FdinfoEntry, type FileKind, type RestoreContext, type RestoreTask,
} from '@amber/core';
import { USK_EXTERN, type UnixSkEntry } from './images';
import { bindName, isPathName, pathOf, unlinkDeleted } from './names';
import { applyOptions } from './options';
import { kindName } from './peers';
import { fillQueue, queuesOf } from './queues';
import { connectRaw, socketIn, socketpairIn } from './remote';

// Every unix socket of the dump is rebuilt in one pass, the first time the fd table asks for
// one: sockets can only connect once every name is bound, and a queue can only be filled once
// both ends exist, whichever tasks hold them. The steps are in CRIU's order (open, then
// post-open): create and bind, listen, connect (accepted connections first, then the ones still
// queued on their listener), fill queues, then peek offsets and shutdowns. Each socket waits
// parked in the task that holds it until its fd table takes it.

export class UnixRestoreError extends AmberError {}

export const keyOf = (e: UnixSkEntry) => `usk:${e.id}`;
const where = (task: RestoreTask, e: UnixSkEntry) => `pid ${task.pid}, unix ${kindName(e.type)} socket socket:[${e.ino}]`;

export const inheritedKey = (e: UnixSkEntry) => `socket:[${e.ino}]`;

interface Plan {
  sockets: UnixSkEntry[];
  byIno: Map<number, UnixSkEntry>;
  home: Map<number, RestoreTask>;
  /** The far end of a connection whose peer had been closed: it goes once the queue is filled. */
  closedMates: Map<number, string>;
  /** Socketpairs made, by socket id. */
  paired: Set<number>;
}

function planOf(ctx: RestoreContext, kind: FileKind<UnixSkEntry>): Plan {
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
  return { sockets: sockets.filter((e) => home.has(e.id)), byIno: new Map(sockets.map((e) => [e.ino, e])), home, closedMates: new Map(), paired: new Set() };
}

/** Builds every socket once per restore. */
export function ensureSockets(ctx: RestoreContext, kind: FileKind<UnixSkEntry>): void {
  const done = building(ctx);
  if (done.built) return;
  done.built = true;
  done.inProgress = true;
  const plan = planOf(ctx, kind);
  createAll(ctx, plan);
  for (const e of plan.sockets) nameAndListen(ctx, plan, e);
  connectAll(ctx, plan);
  for (const e of plan.sockets) fillFor(ctx, plan, e);
  for (const e of plan.sockets) finishSocket(ctx, plan, e);
  for (const e of plan.sockets) unlinkDeleted(e);
  done.inProgress = false;
}

const building = (ctx: RestoreContext) => ctx.state('unix:unix-built', () => ({ built: false, inProgress: false }));

/**
 * While the sockets are being built, a socket asked for is one in flight that a queue refill
 * sends: the sender gets its own fd for it and the socket stays parked for its later steps.
 */
export function whileBuilding(ctx: RestoreContext, task: RestoreTask, e: UnixSkEntry): number | undefined {
  if (!building(ctx).inProgress) return undefined;
  const { task: owner, fd } = at(ctx, e);
  if (owner === task) return task.remote.sys.with(where(task, e)).fcntl(fd, 1030, 0);
  return fetchFd(task.remote, owner.pid, fd);
}

const at = (ctx: RestoreContext, e: UnixSkEntry) => {
  const p = ctx.fds.parkedAt(keyOf(e));
  if (!p) throw new UnixRestoreError(`unix socket socket:[${e.ino}] was not made (internal)`);
  return p;
};

/** Two ends of one connection, neither taken from a listener: one socketpair, made by the first holder. */
function pairable(plan: Plan, e: UnixSkEntry): UnixSkEntry | undefined {
  const peer = plan.byIno.get(e.peer);
  if (!peer || peer.peer !== e.ino || !plan.home.has(peer.id)) return undefined;
  if (e.acceptedFrom || peer.acceptedFrom || e.queuedOn || peer.queuedOn) return undefined;
  return peer;
}

function createAll(ctx: RestoreContext, plan: Plan): void {
  const made = new Set<number>();
  for (const e of plan.sockets) {
    if (e.uflags & USK_EXTERN && (e.type !== SOCK.DGRAM || !e.peerName?.length)) {
      const task = plan.home.get(e.id)!;
      throw new UnixRestoreError(
        `${where(task, e)} was connected to ${describeUnixName(e.peerName ?? Buffer.alloc(0))} outside the tree: a connection to another process ` +
          `cannot be remade; hand one in with --inherit-fd fd[N]:${inheritedKey(e)} (N: an fd of amber's for it)`,
      );
    }
    if (made.has(e.id) || e.acceptedFrom) continue; // accepted ones come from their listener
    const task = plan.home.get(e.id)!;
    const type = e.type | SOCK.CLOEXEC;
    const peer = pairable(plan, e);
    const peerGone = !peer && e.type !== SOCK.DGRAM && e.state === UNIX_STATE.ESTABLISHED && !plan.byIno.has(e.peer) && !e.queuedOn && !(e.uflags & USK_EXTERN);
    if (peer || peerGone) {
      const [a, b] = socketpairIn(task.remote, type, where(task, e));
      ctx.fds.park(task, keyOf(e), a);
      if (peer) {
        ctx.fds.park(task, keyOf(peer), b);
        made.add(peer.id);
        plan.paired.add(peer.id).add(e.id);
      } else {
        const mate = `usk-mate:${e.id}`;
        ctx.fds.park(task, mate, b);
        plan.closedMates.set(e.id, mate);
      }
    } else {
      ctx.fds.park(task, keyOf(e), socketIn(task.remote, type, where(task, e)));
    }
    made.add(e.id);
  }
}

function nameAndListen(ctx: RestoreContext, plan: Plan, e: UnixSkEntry): void {
  if (e.acceptedFrom) return;
  const { task, fd } = at(ctx, e);
  if (e.name.length) bindName(task, fd, e);
  if (e.state === UNIX_STATE.LISTEN) task.remote.sys.with(where(task, e)).listen(fd, e.backlog);
  applyOptions(task.remote, fd, e.opts, where(task, e));
}

/** The address to reach a bound socket by (relative names through their directory). */
const addressOf = (e: UnixSkEntry) => (isPathName(e.name) ? Buffer.from(pathOf(e)) : e.name);

function connectTo(ctx: RestoreContext, e: UnixSkEntry, name: Buffer, what: string): void {
  const { task, fd } = at(ctx, e);
  const r = connectRaw(task.remote, fd, name);
  if (r < 0) throw new UnixRestoreError(`${where(task, e)}: cannot connect to ${what} ${describeUnixName(name)}: ${errnoName(-r)}`);
}

function connectAll(ctx: RestoreContext, plan: Plan): void {
  // connections accepted at dump time: connect, and the listener accepts at once, so each
  // accepted socket is the one its client reached
  for (const e of plan.sockets) {
    if (!e.acceptedFrom) continue;
    const listener = plan.byIno.get(e.acceptedFrom);
    const client = plan.byIno.get(e.peer);
    if (!listener || !client || !plan.home.has(client.id)) throw new UnixRestoreError(`unix socket socket:[${e.ino}]: its listener or client is missing from the images`);
    connectTo(ctx, client, addressOf(listener), 'its listener');
    const l = at(ctx, listener);
    const accepted = l.task.remote.sys.with(where(l.task, listener)).accept4(l.fd, 0, 0, SOCK.CLOEXEC);
    ctx.fds.park(l.task, keyOf(e), accepted);
    const task = plan.home.get(e.id)!;
    applyOptions(l.task.remote, ctx.fds.parkedAt(keyOf(e))!.fd, e.opts, where(task, e));
  }
  for (const e of plan.sockets) {
    if (e.type !== SOCK.DGRAM || plan.paired.has(e.id)) continue;
    if (e.uflags & USK_EXTERN) {
      const task = plan.home.get(e.id)!;
      if (!ctx.options.extUnixSk) {
        throw new UnixRestoreError(`${where(task, e)} was connected to ${describeUnixName(e.peerName ?? Buffer.alloc(0))} outside the tree (dumped with --ext-unix-sk): restore with --ext-unix-sk to reconnect it, or --inherit-fd fd[N]:${inheritedKey(e)}`);
      }
      connectTo(ctx, e, e.peerName ?? Buffer.alloc(0), 'its peer outside the tree');
      continue;
    }
    const peer = e.peer ? plan.byIno.get(e.peer) : undefined;
    if (!peer) continue;
    if (!peer.name.length) throw new UnixRestoreError(`unix datagram socket socket:[${e.ino}] was connected to an unnamed socket that is not its pair`);
    connectTo(ctx, e, addressOf(peer), 'its peer');
  }
  // connections still waiting to be accepted, in their listener's order
  const queued = plan.sockets.filter((e) => e.queuedOn);
  const rank = (e: UnixSkEntry) => plan.byIno.get(e.queuedOn!)?.icons?.indexOf(e.ino) ?? 0;
  for (const e of queued.sort((a, b) => rank(a) - rank(b))) {
    const listener = plan.byIno.get(e.queuedOn!);
    if (!listener) throw new UnixRestoreError(`unix socket socket:[${e.ino}]: its listener socket:[${e.queuedOn}] is missing from the images`);
    connectTo(ctx, e, addressOf(listener), 'its listener');
  }
}

function fillFor(ctx: RestoreContext, plan: Plan, e: UnixSkEntry): void {
  if (!queuesOf(ctx).get(e.id)?.length) return;
  const mine = at(ctx, e);
  const what = where(mine.task, e);
  const mate = plan.closedMates.get(e.id);
  if (mate) return fillQueue(ctx, e, mine.task, ctx.fds.parkedAt(mate)!.fd, undefined, what);
  // a socket connected to this one sends into it; for a datagram socket nobody is connected to, a
  // fresh unbound socket addresses it by name
  const sender = e.type !== SOCK.DGRAM ? plan.byIno.get(e.peer) : plan.sockets.find((s) => s.peer === e.ino && s.id !== e.id);
  if (sender) {
    const s = at(ctx, sender);
    return fillQueue(ctx, e, s.task, s.fd, undefined, what);
  }
  if (!e.name.length) throw new UnixRestoreError(`${what}: its queue has data but nothing can send to it (no peer, no name)`);
  const remote = mine.task.remote;
  const tmp = socketIn(remote, SOCK.DGRAM | SOCK.CLOEXEC, what);
  try {
    fillQueue(ctx, e, mine.task, tmp, addressOf(e), what);
  } finally {
    remote.sys.close(tmp);
  }
}

function finishSocket(ctx: RestoreContext, plan: Plan, e: UnixSkEntry): void {
  const { task, fd } = at(ctx, e);
  const remote = task.remote;
  if (e.peekOff !== undefined && e.peekOff >= 0) {
    remote.resetData();
    const v = Buffer.alloc(4);
    v.writeInt32LE(e.peekOff, 0);
    remote.sys.with(where(task, e)).setsockopt(fd, 1, 42, remote.stage(v), 4);
    remote.resetData();
  }
  const mate = plan.closedMates.get(e.id);
  if (mate) {
    // the peer had gone: its end is closed now, after it refilled the queue
    const owner = ctx.fds.parkedAt(mate)!.task;
    owner.remote.sys.close(ctx.fds.unpark(owner, mate)!);
    return;
  }
  const bits = e.shutdown ?? 0;
  if (!bits) return;
  const how = bits === (SHUTDOWN_MASK.RCV | SHUTDOWN_MASK.SEND) ? SHUT.RDWR : bits & SHUTDOWN_MASK.SEND ? SHUT.WR : SHUT.RD;
  remote.sys.with(where(task, e)).shutdown(fd, how);
}
