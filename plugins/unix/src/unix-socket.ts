import {
  F, FdType, O, close, fetchFd, getpeernameUnix, getsocknameUnix, takeFd, unixSocket, unixSockets, describeUnixName,
  type DumpContext, type DumpTask, type FdResource, type FieldDifference, type FileKind,
  type RestoreContext, type RestoreTask, type UnixDiagRecord,
} from '@amber/core';
import { constants } from 'node:fs';
import { dumpUnixSocket, socketInode } from './dump-socket';
import { USK_EXTERN, USK_MEMBER, type UnixSkEntry } from './images';
import { compareOptions, readOptions } from './options';
import { O_ASYNC, compareOwner } from './owner';
import { kindName } from './peers';
import { handOut, madeSocket } from './open-socket';
import { finishSocket } from './post-open';
import { inheritedKey, planOf } from './restore-plan';

const S_IFSOCK = 0o140000;

/** AF_UNIX sockets of every type: one description per socket, rebuilt with its peers and queues. */
export class UnixSocketKind implements FileKind<UnixSkEntry> {
  readonly fdType = FdType.UNIXSK;
  readonly name = 'unix socket';
  readonly member = USK_MEMBER;

  claims(fd: FdResource): boolean {
    if (!fd.link.startsWith('socket:[') || (fd.mode & constants.S_IFMT) !== S_IFSOCK) return false;
    return unixSocket(socketInode(fd), 0) !== undefined;
  }

  dumpDescription(ctx: DumpContext, task: DumpTask, fd: FdResource, id: number): UnixSkEntry {
    return dumpUnixSocket(ctx, task, fd, id);
  }

  /** Creates, binds and listens (open-socket.ts); a socket made earlier for another's sake is handed out. */
  openDescription(ctx: RestoreContext, task: RestoreTask, e: UnixSkEntry): number {
    const inherited = ctx.options.inheritFds?.find((i) => i.key === inheritedKey(e));
    if (inherited) return fetchFd(task.remote, process.pid, inherited.fd);
    const plan = planOf(ctx, this);
    const mine = plan.byIno.get(e.ino) ?? e;
    madeSocket(ctx, plan, mine);
    const fd = handOut(ctx, task, mine);
    // O_ASYNC is the core's, with the owner
    if (e.flags & O.NONBLOCK) task.remote.sys.with(`fd ${fd}`).fcntl(fd, F.SETFL, O.NONBLOCK);
    return fd;
  }

  /** Connects, fills queues, shuts down (post-open.ts): every socket of every task is bound by now. */
  postOpen(ctx: RestoreContext, _task: RestoreTask, e: UnixSkEntry): void {
    if (ctx.options.inheritFds?.some((i) => i.key === inheritedKey(e))) return;
    const plan = planOf(ctx, this);
    finishSocket(ctx, plan, plan.byIno.get(e.ino) ?? e);
  }

  compareDescription(live: FdResource, e: UnixSkEntry): FieldDifference[] {
    const rec = unixSocket(socketInode(live));
    if (!rec) return [{ what: 'unix socket', expected: kindName(e.type), actual: 'not known to sock_diag' }];
    const out: FieldDifference[] = [];
    const diff = (what: string, expected: string, actual: string) => void (expected !== actual && out.push({ what, expected, actual }));
    diff('type', kindName(e.type), kindName(rec.type));
    diff('state', String(e.state), String(rec.state));
    diff('shutdown', String(e.shutdown ?? 0), String(rec.shutdown));
    diff('flags', `0${(e.flags & (O.NONBLOCK | O_ASYNC)).toString(8)}`, `0${(live.info.flags & (O.NONBLOCK | O_ASYNC)).toString(8)}`);
    if (e.rqlen !== undefined) diff('bytes queued', String(e.rqlen), String(rec.rqlen));
    if (e.state === 10) diff('pending connections', String(e.icons?.length ?? 0), String(rec.icons.length));
    const copy = takeFd(live.pid, live.fd);
    try {
      diff('name', describeUnixName(e.name), describeUnixName(getsocknameUnix(copy)));
      diff('peer', peerShape(e), livePeerShape(rec));
      if (e.uflags & USK_EXTERN) diff('peer outside the tree', describeUnixName(e.peerName ?? Buffer.alloc(0)), describeUnixName(getpeernameUnix(copy) ?? Buffer.alloc(0)));
      out.push(...compareOptions(readOptions(copy), e.opts), ...compareOwner(live.pid, copy, e.fown));
    } finally {
      close(copy);
    }
    return out;
  }
}

/** What a socket is connected to, in words that survive new inode numbers. */
function peerShape(e: UnixSkEntry): string {
  if (e.queuedOn) return 'queued on a listener';
  if (!e.peer) return e.state === 1 && e.type !== 2 ? 'closed by its peer' : 'none';
  return e.type === 2 ? 'connected' : 'connected both ways';
}

function livePeerShape(rec: UnixDiagRecord): string {
  if (!rec.peer) {
    if (rec.type !== 2 && rec.state === 1) {
      const queued = [...unixSockets().values()].some((l) => l.state === 10 && l.icons.includes(rec.inode));
      return queued ? 'queued on a listener' : 'closed by its peer';
    }
    return 'none';
  }
  const peer = unixSocket(rec.peer);
  if (rec.type === 2) return 'connected';
  return peer?.peer === rec.inode ? 'connected both ways' : 'connected one way';
}
