import {
  addressOf, AmberError, closeMqueue, FdType, faultPoint, isOnMqueueFs, mqAttrBuffer, mqGetAttr, mqReceive, mqSend, mqStatus, O, openMqueueOf, SYS, syscallRaw,
  type DumpContext, type DumpTask, type FdinfoEntry, type FdResource, type MqStatus, type FieldDifference, type FileKind, type RestoreContext, type RestoreTask,
} from '@amber/core';
import { constants } from 'node:fs';
import { MQUEUE_PROTO, type MqueueFileEntry, type MqueueMessage } from './objs-images';
import type { TreeIpcNamespace } from './namespace';

export class MqueueError extends AmberError {}

const DELETED = ' (deleted)';
const EEXIST = 17;

interface MqueueDumpState {
  /** queues dumped, by inode: their messages are written once */
  seen: Set<bigint>;
  /** named queues of the host's namespace to unlink once a dump that ends the tree is complete */
  names: Set<string>;
}

interface MqueueRestoreState {
  /** queues made, by dumped inode: the name they were made under */
  made: Map<bigint, string>;
  /** every description opened, by id: where a notification's owner finds its fd */
  descriptions: Map<number, MqueueFileEntry>;
  unlinked: Set<bigint>;
  /** made by this restore, removed again if it fails (host namespace: they would outlive it) */
  created: string[];
}

export const mqueueDumpState = (ctx: DumpContext) => ctx.state<MqueueDumpState>('ipc:mqueue', () => ({ seen: new Set(), names: new Set() }));
export const mqueueRestoreState = (ctx: RestoreContext) => ctx.state<MqueueRestoreState>('ipc:mqueue', () => ({ made: new Map(), descriptions: new Map(), unlinked: new Set(), created: [] }));

const nameOf = (link: string) => {
  const path = link.endsWith(DELETED) ? link.slice(0, -DELETED.length) : link;
  return `/${path.split('/').pop()}`;
};

/**
 * The messages of a queue, taken off it and put back in the same order before anything else
 * runs (the kernel cannot show a message without taking it): each priority's messages stay in
 * their order, and so does the queue. Whatever fails midway, what was taken goes back.
 */
function readMessages(pid: number, fd: number, curmsgs: number, msgsize: number, afterRefill: () => void): MqueueMessage[] {
  const mqd = openMqueueOf(pid, fd, O.RDWR);
  const taken: { priority: number; data: Buffer }[] = [];
  try {
    try {
      for (let i = 0; i < curmsgs; i++) {
        const m = mqReceive(mqd, msgsize);
        if (!m) break;
        taken.push(m);
      }
      faultPoint('dump:mqueue-taken');
    } finally {
      taken.forEach((m, i) => {
        try {
          mqSend(mqd, m.data, m.priority);
        } catch (e) {
          throw new MqueueError(`pid ${pid} fd ${fd}: could not put message ${i + 1} of ${taken.length} back on its queue (${(e as Error).message}): ${taken.length - i} lost`);
        }
      });
      // the first message back into the empty queue fired (and so dropped) a registered notification
      if (taken.length) afterRefill();
    }
  } finally {
    closeMqueue(mqd);
  }
  return taken;
}

/** mq_open fds: the queue's name, attributes, owner and mode, and its messages with their priorities. */
export class MqueueKind implements FileKind<MqueueFileEntry> {
  readonly fdType = FdType.MQUEUE;
  readonly name = 'POSIX message queue';
  readonly member = { field: 40, name: 'mq', protoFile: MQUEUE_PROTO, message: 'amberipc.MqueueFileEntry' };

  constructor(private readonly namespace: (ctx: DumpContext) => TreeIpcNamespace) {}

  claims(fd: FdResource): boolean {
    return (fd.mode & constants.S_IFMT) === constants.S_IFREG && fd.link.startsWith('/') && isOnMqueueFs(`/proc/${fd.pid}/fd/${fd.fd}`);
  }

  dumpDescription(ctx: DumpContext, _task: DumpTask, fd: FdResource, id: number): MqueueFileEntry {
    const mqd = openMqueueOf(fd.pid, fd.fd, O.RDONLY);
    let attr;
    let status;
    try {
      attr = mqGetAttr(mqd);
      status = mqStatus(mqd);
    } finally {
      closeMqueue(mqd);
    }
    const name = nameOf(fd.link);
    const owner = status.notifyPid ? notificationOwner(ctx, fd, name, status) : undefined;
    const state = mqueueDumpState(ctx);
    let messages: MqueueMessage[] = [];
    const first = !state.seen.has(fd.ino);
    if (first) {
      state.seen.add(fd.ino);
      messages = readMessages(fd.pid, fd.fd, Number(attr.curmsgs), Number(attr.msgsize), () => owner && registerNone(owner.task.remote, owner.fd, name));
      if (!fd.link.endsWith(DELETED) && this.namespace(ctx).host) state.names.add(name);
      ctx.count('mqueue messages', Number(attr.curmsgs));
    }
    return {
      id, name, flags: fd.info.flags & (O.ACCMODE | O.NONBLOCK), uid: fd.uid, gid: fd.gid, mode: fd.mode & 0o777,
      maxmsg: attr.maxmsg, msgsize: attr.msgsize, unlinked: fd.link.endsWith(DELETED), ino: fd.ino, curmsgs: Number(attr.curmsgs), bytes: status.bytes, messages,
      ...(owner && first ? { notifyPid: owner.task.pid } : {}),
    };
  }

  /** The first description of a queue makes it (O_EXCL: a name taken is an error), as the queue's owner; the rest open it. */
  openDescription(ctx: RestoreContext, task: RestoreTask, e: MqueueFileEntry, id: number): number {
    const state = mqueueRestoreState(ctx);
    state.descriptions.set(id, e);
    const r = task.remote;
    const flags = e.flags & (O.ACCMODE | O.NONBLOCK);
    // the syscall takes the name without its slash (glibc's mq_open strips it)
    const bare = e.name.slice(1);
    r.resetData();
    if (state.made.has(e.ino)) return r.sys.with(`POSIX queue ${e.name}`).mq_open(bare, flags, 0, 0);
    const fd = r.sysRaw.mq_open(bare, flags | O.CREAT | O.EXCL, 0o600, mqAttrBuffer(e.maxmsg, e.msgsize));
    if (fd === -EEXIST) throw new MqueueError(`POSIX queue ${e.name} exists already in this IPC namespace: remove it (rm /dev/mqueue${e.name}, or mq_unlink) or restore elsewhere`);
    if (fd < 0) throw new MqueueError(`pid ${task.pid}: mq_open of POSIX queue ${e.name} (maxmsg ${e.maxmsg}, msgsize ${e.msgsize}) failed: errno ${-fd}`);
    state.made.set(e.ino, e.name);
    state.created.push(e.name);
    r.sys.with(`POSIX queue ${e.name}`).fchown(fd, e.uid, e.gid);
    r.sys.with(`POSIX queue ${e.name}`).fchmod(fd, e.mode);
    return fd;
  }

  /** The messages go back once every description is open (the one that carries them may not be the first opened); an unlinked queue is unlinked then. */
  postOpen(ctx: RestoreContext, task: RestoreTask, e: MqueueFileEntry, fd: number): void {
    fillQueue(task.pid, fd, e.messages);
    const state = mqueueRestoreState(ctx);
    if (!e.unlinked || state.unlinked.has(e.ino)) return;
    state.unlinked.add(e.ino);
    task.remote.resetData();
    task.remote.sys.with(`POSIX queue ${e.name}`).mq_unlink(e.name.slice(1));
    state.created = state.created.filter((n) => n !== e.name);
  }

  compareDescription(live: FdResource, e: MqueueFileEntry): FieldDifference[] {
    const out: FieldDifference[] = [];
    const diff = (what: string, expected: string, actual: string) => void (expected !== actual && out.push({ what, expected, actual }));
    const mqd = openMqueueOf(live.pid, live.fd, O.RDONLY);
    try {
      const attr = mqGetAttr(mqd);
      const status = mqStatus(mqd);
      diff('name', e.name, nameOf(live.link));
      diff('flags', `0${e.flags.toString(8)}`, `0${(live.info.flags & (O.ACCMODE | O.NONBLOCK)).toString(8)}`);
      diff('owner', `${e.uid}:${e.gid}`, `${live.uid}:${live.gid}`);
      diff('mode', `0${e.mode.toString(8)}`, `0${(live.mode & 0o777).toString(8)}`);
      diff('maxmsg/msgsize', `${e.maxmsg}/${e.msgsize}`, `${attr.maxmsg}/${attr.msgsize}`);
      diff('message count', String(e.curmsgs ?? '?'), String(attr.curmsgs));
      diff('bytes queued', String(e.bytes ?? '?'), String(status.bytes));
      diff('unlinked', String(!!e.unlinked), String(live.link.endsWith(DELETED)));
    } finally {
      closeMqueue(mqd);
    }
    return out;
  }
}

/** Sends the queue's dumped messages, in order, through an fd of amber's on it. */
function fillQueue(pid: number, fd: number, messages: readonly MqueueMessage[]): void {
  if (!messages.length) return;
  const mqd = openMqueueOf(pid, fd, O.WRONLY);
  try {
    for (const m of messages) mqSend(mqd, m.data, m.priority);
  } finally {
    closeMqueue(mqd);
  }
}

/** mq_unlink from amber's thread (in the namespace it is in). */
export function unlinkQueue(name: string): void {
  const bare = Buffer.from(`${name.slice(1)}\0`);
  syscallRaw(SYS.mq_unlink, [addressOf(bare)]);
}

const SIGEV_NONE = 1;

/** struct sigevent asking for no notification at all (SIGEV_NONE). */
function sigeventNone(): Buffer {
  const sev = Buffer.alloc(64);
  sev.writeInt32LE(SIGEV_NONE, 12);
  return sev;
}

function registerNone(remote: RestoreTask['remote'] | DumpTask['remote'], fd: number, name: string): void {
  remote.resetData();
  remote.sys.with(`POSIX queue ${name}: its SIGEV_NONE notification`).mq_notify(fd, sigeventNone());
  remote.resetData();
}

/**
 * The task of the tree that registered a queue's notification, and its fd on the queue. Only
 * SIGEV_NONE is kept: for a signal or a thread the kernel does not show sigev_value (nor the
 * thread's attributes).
 */
function notificationOwner(ctx: DumpContext, fd: FdResource, name: string, status: MqStatus): { task: DumpTask; fd: number } {
  const what = `pid ${fd.pid} fd ${fd.fd}: POSIX queue ${name} has a notification registered by pid ${status.notifyPid} (sigev_notify ${status.notify}, signal ${status.signo})`;
  if (status.notify !== SIGEV_NONE) throw new MqueueError(`${what}; the kernel does not show its sigev_value, so amber cannot restore it`);
  const task = ctx.tasks.find((t) => t.pid === status.notifyPid);
  if (!task) throw new MqueueError(`${what}, a process outside the tree`);
  const held = task.fds.find((f) => f.ino === fd.ino && f.dev === fd.dev);
  if (!held) throw new MqueueError(`${what}, which holds no fd of it now`);
  return { task, fd: held.fd };
}

/**
 * SIGEV_NONE notifications, registered again by their owners once every fd is in place (closing
 * any fd of a queue in its owner drops the notification, so not before amber's own are closed).
 */
export function restoreNotifications(ctx: RestoreContext): void {
  const state = mqueueRestoreState(ctx);
  for (const e of state.descriptions.values()) {
    if (!e.notifyPid) continue;
    const owner = ctx.tasks.find((t) => t.pid === e.notifyPid);
    if (!owner) throw new MqueueError(`POSIX queue ${e.name}: pid ${e.notifyPid}, which registered its notification, is not in the restored tree`);
    const ids = new Set([...state.descriptions].filter(([, d]) => d.ino === e.ino).map(([id]) => id));
    const fd = ctx.store.read<FdinfoEntry>('fdinfo', `fdinfo-${owner.ids.filesId}`).entries.find((f) => ids.has(f.id))?.fd;
    if (fd === undefined) throw new MqueueError(`POSIX queue ${e.name}: pid ${e.notifyPid}, which registered its notification, has no fd of it`);
    registerNone(owner.remote, fd, e.name);
  }
}
