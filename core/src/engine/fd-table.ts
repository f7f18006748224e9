import { readlinkSync, statSync } from 'node:fs';
import { F, O, SYS } from '../kernel/constants';
import { AmberError } from '../kernel/errors';
import { listFds, readFdinfo } from '../task/proc';
import { fetchFd } from '../task/fd-transfer';
import { isAmberTracker } from './predump';
import type { FdinfoEntry } from '../images';
import type { DumpContext, DumpTask, FdResource, FileKind, RestoreContext, RestoreTask } from './plugin';

/**
 * What a user can do about an fd that no plugin can dump, saying what it does: a dump without the
 * fd table cannot bring the process back working, and any dump without --leave-running kills it.
 */
export const FDLESS_DUMP_HINT =
  '--only mm --leave-running makes a memory-only snapshot for inspection (amber show, amber compare) and the process ' +
  'keeps running; it cannot be restored to a working process (it would have no open files), and a dump without ' +
  '--leave-running kills the process';

export class UnclaimedFdError extends AmberError {
  constructor(readonly pid: number, readonly fd: number, readonly link: string) {
    super(`fd ${fd} of pid ${pid} is ${link}, which no plugin can dump; nothing was changed and the process keeps running (${FDLESS_DUMP_HINT})`);
  }
}

const FD_CLOEXEC = 1;

/** One open fd, with what fstat and fdinfo say about it. */
export function fdResourceOf(pid: number, fd: number, link = readlinkSync(`/proc/${pid}/fd/${fd}`)): FdResource {
  const st = statSync(`/proc/${pid}/fd/${fd}`, { bigint: true });
  return {
    pid, fd, link, mode: Number(st.mode), uid: Number(st.uid), gid: Number(st.gid), dev: st.dev, ino: st.ino, rdev: st.rdev, size: st.size,
    info: readFdinfo(pid, fd),
  };
}

/** Every open fd of a frozen task, with what fstat and fdinfo say about it. */
export function collectFds(pid: number): FdResource[] {
  const fds = listFds(pid).map(({ fd, link }) => fdResourceOf(pid, fd, link));
  // AMBER'S OWN FD: the dirty-tracking userfaultfd a pre-dump parks in the task (engine/predump.ts).
  // It is not the task's state: never dumped, restored or compared; a final dump closes it.
  return fds.filter((f) => !isAmberTracker(f));
}

/**
 * The fd tables of a tree: routes every fd to the one file kind that claims it, writes each open
 * file description once (files.img) and every fd table once (fdinfo-<files id>.img), and on restore
 * opens each description once per task and puts it at its fd numbers.
 */
export class FdTable {
  constructor(private readonly kinds: readonly FileKind[]) {}

  route(fd: FdResource): FileKind {
    const kind = this.kinds.find((k) => k.claims(fd));
    if (!kind) throw new UnclaimedFdError(fd.pid, fd.fd, fd.link);
    return kind;
  }

  /** Checks that every fd has an owner; throws before anything is written or changed. */
  check(tasks: DumpTask[]): void {
    for (const t of tasks) for (const fd of t.fds) this.route(fd);
  }

  /**
   * The description id of an open file that is no fd of the tree: one amber holds (a file in
   * flight in a socket queue, which peeking installed in amber). Dumped once, by its kind, as if
   * `holder` held it.
   */
  describeFile(ctx: DumpContext, holder: DumpTask, pid: number, fd: number): number {
    const res = fdResourceOf(pid, fd);
    const kind = this.route(res);
    const key = `${res.dev}:${res.ino}:${res.info.flags & ~O.CLOEXEC}:${res.info.pos}`;
    const { id, isNew } = ctx.objects.identify('FILE', pid, fd, key);
    if (isNew) ctx.files.add(kind.dumpDescription(ctx, holder, res, id));
    return id;
  }

  dump(ctx: DumpContext): void {
    const tablesDone = new Set<number>();
    for (const task of ctx.tasks) {
      if (tablesDone.has(task.ids.filesId)) continue;
      tablesDone.add(task.ids.filesId);
      const entries: FdinfoEntry[] = [];
      for (const fd of task.fds) {
        const kind = this.route(fd);
        const key = `${fd.dev}:${fd.ino}:${fd.info.flags & ~O.CLOEXEC}:${fd.info.pos}`;
        const { id, isNew } = ctx.objects.identify('FILE', task.pid, fd.fd, key);
        if (isNew) ctx.files.add(kind.dumpDescription(ctx, task, fd, id));
        entries.push({ id, flags: fd.info.flags & O.CLOEXEC ? FD_CLOEXEC : 0, type: kind.fdType, fd: fd.fd });
      }
      ctx.store.write('fdinfo', `fdinfo-${task.ids.filesId}`, entries);
      ctx.count('fds', entries.length);
    }
  }

  /** Where each description restored so far lives: a task and its fd number there. */
  private readonly placed = new Map<number, { pid: number; fd: number }>();
  /** fds openAside() keeps in tasks until every fd table is filled. */
  private readonly aside: { task: RestoreTask; fd: number }[] = [];

  /**
   * An fd in `task` for description `id` that no fd of the task's table may be (a file to send in
   * flight into a socket queue): fetched from where the description was restored, or opened here
   * by its kind and kept, above the task's table, for the holders still to come. The caller uses
   * it and leaves it open; closeAside() closes it.
   */
  openAside(ctx: RestoreContext, task: RestoreTask, id: number): number {
    const desc = ctx.files.get(id);
    const kind = this.kinds.find((k) => k.fdType === desc.type);
    if (!kind) throw new AmberError(`pid ${task.pid}: no plugin restores file type ${desc.type} (file id ${id} in flight)`);
    const elsewhere = this.placed.get(id);
    const got = elsewhere ? fetchFd(task.remote, elsewhere.pid, elsewhere.fd) : kind.openDescription(ctx, task, desc);
    const { entries } = ctx.store.read<FdinfoEntry>('fdinfo', `fdinfo-${task.ids.filesId}`);
    const high = task.remote.call('fcntl(F_DUPFD_CLOEXEC)', SYS.fcntl, [got, F.DUPFD_CLOEXEC, Math.max(2, ...entries.map((e) => e.fd)) + 1], `file id ${id}`);
    task.remote.call('close', SYS.close, [got]);
    if (!elsewhere) this.placed.set(id, { pid: task.pid, fd: high });
    this.aside.push({ task, fd: high });
    return high;
  }

  closeAside(): void {
    for (const { task, fd } of this.aside.splice(0)) task.remote.callRaw(SYS.close, [fd]);
  }

  /**
   * Fills a task's fd table. A description already restored in another task (fds inherited
   * across fork, the two ends of a pipe between parent and child) is fetched from there, so it
   * stays one description.
   */
  restore(ctx: RestoreContext, task: RestoreTask): void {
    const { entries: dumped } = ctx.store.read<FdinfoEntry>('fdinfo', `fdinfo-${task.ids.filesId}`);
    const order = (e: FdinfoEntry) => this.kinds.find((k) => k.fdType === ctx.files.get(e.id).type)?.restoreOrder ?? 0;
    const entries = [...dumped].sort((a, b) => order(a) - order(b));
    const opened = new Map<number, number>();
    const remote = task.remote;
    for (const e of entries) {
      const desc = ctx.files.get(e.id);
      const kind = this.kinds.find((k) => k.fdType === desc.type);
      if (!kind) throw new AmberError(`fd ${e.fd} of pid ${task.pid}: no plugin restores file type ${desc.type}`);
      remote.resetData();
      const existing = opened.get(e.id);
      const cloexec = e.flags & FD_CLOEXEC ? O.CLOEXEC : 0;
      if (existing !== undefined) {
        remote.call('dup3', SYS.dup3, [existing, e.fd, cloexec], `fd ${e.fd}`);
        continue;
      }
      const elsewhere = this.placed.get(e.id);
      const got = elsewhere ? fetchFd(remote, elsewhere.pid, elsewhere.fd) : kind.openDescription(ctx, task, desc);
      if (got !== e.fd) {
        remote.call('dup3', SYS.dup3, [got, e.fd, cloexec], `fd ${e.fd}`);
        remote.call('close', SYS.close, [got]);
      } else {
        // a fetched fd always arrives close-on-exec, and a kind may hand over one it fetched
        remote.call('fcntl(F_SETFD)', SYS.fcntl, [e.fd, 2 /* F_SETFD */, cloexec ? FD_CLOEXEC : 0], `fd ${e.fd}`);
      }
      opened.set(e.id, e.fd);
      if (!elsewhere) this.placed.set(e.id, { pid: task.pid, fd: e.fd });
    }
  }
}
