import { readlinkSync, statSync } from 'node:fs';
import { F, O } from '../kernel/constants';
import { AmberError } from '../kernel/errors';
import { listFds, readFdinfo } from '../task/proc';
import { fetchFd, placeFetched, type FetchedDescription } from '../task/fd-transfer';
import { applyFown, fownOf, recordFown } from './fown';
import type { FdinfoEntry } from '../images';
import { FD_RESTORE_STEPS, type ResourcePlugin, type DumpContext, type DumpTask, type FdResource, type FileKind, type RestoreContext, type RestoreTask } from './plugin';

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

/** Two kinds claim one fd: which of them dumps it would be an accident of load order. */
export class OverlappingClaimError extends AmberError {
  constructor(readonly pid: number, readonly fd: number, readonly link: string, claimants: string[]) {
    super(`fd ${fd} of pid ${pid} is ${link}, which ${claimants.length} fd kinds claim: ${claimants.join(' and ')}; a plugin's claims() must not overlap another's; nothing was changed and the process keeps running`);
  }
}

/** Two kinds with one fdType (or files.img member): the restore could not tell whose an entry is. */
export function checkKindsDistinct(plugins: readonly ResourcePlugin[]): void {
  const byType = new Map<number, string>();
  for (const p of plugins) {
    for (const k of p.fileKinds ?? []) {
      const other = byType.get(k.fdType);
      const me = ownerName(p, k);
      if (other) throw new AmberError(`fd kinds ${other} and ${me} both have fd type ${k.fdType}: each fd type belongs to one kind`);
      byType.set(k.fdType, me);
    }
  }
}

const ownerName = (p: ResourcePlugin, k: FileKind) => `'${k.name}' (plugin ${p.name})`;

const FD_CLOEXEC = 1;

/** One open fd, with what fstat and fdinfo say about it. */
export function fdResourceOf(pid: number, fd: number, link = readlinkSync(`/proc/${pid}/fd/${fd}`)): FdResource {
  const st = statSync(`/proc/${pid}/fd/${fd}`, { bigint: true });
  return {
    pid, fd, link, mode: Number(st.mode), uid: Number(st.uid), gid: Number(st.gid), dev: st.dev, ino: st.ino, rdev: st.rdev, size: st.size,
    info: readFdinfo(pid, fd),
  };
}

/**
 * Every open fd of a frozen task, with what fstat and fdinfo say about it, but those a plugin says
 * amber itself left there (ResourcePlugin.hidesFd).
 */
export function collectFds(pid: number, plugins: readonly ResourcePlugin[] = []): FdResource[] {
  const fds = listFds(pid).map(({ fd, link }) => fdResourceOf(pid, fd, link));
  return fds.filter((f) => !plugins.some((p) => p.hidesFd?.(f)));
}

/**
 * The fd tables of a tree: routes every fd to the one file kind that claims it, writes each open
 * file description once (files.img) and every fd table once (fdinfo-<files id>.img), and on restore
 * opens each description once per task and puts it at its fd numbers.
 */
export class FdTable {
  private readonly kinds: readonly FileKind[];
  private readonly owners = new Map<FileKind, ResourcePlugin>();

  constructor(plugins: readonly ResourcePlugin[]) {
    checkKindsDistinct(plugins);
    for (const p of plugins) for (const k of p.fileKinds ?? []) this.owners.set(k, p);
    this.kinds = [...this.owners.keys()];
  }

  /** The one kind that claims fd; none, or more than one, is an error naming them. */
  route(fd: FdResource): FileKind {
    const claimants = this.kinds.filter((k) => k.claims(fd));
    if (!claimants.length) throw new UnclaimedFdError(fd.pid, fd.fd, fd.link);
    if (claimants.length > 1) throw new OverlappingClaimError(fd.pid, fd.fd, fd.link, claimants.map((k) => ownerName(this.owners.get(k)!, k)));
    return claimants[0];
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
    if (isNew) ctx.files.add(kind, id, kind.dumpDescription(ctx, holder, res, id));
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
        if (isNew) {
          fd.fown = fownOf(task, fd);
          const entry = kind.dumpDescription(ctx, task, fd, id);
          recordFown(entry, fd.fown);
          ctx.files.add(kind, id, entry);
        }
        entries.push({ id, flags: fd.info.flags & O.CLOEXEC ? FD_CLOEXEC : 0, type: kind.fdType, fd: fd.fd });
      }
      ctx.store.write('fdinfo', `fdinfo-${task.ids.filesId}`, entries);
      ctx.count('fds', entries.length);
    }
  }

  /** Where each description restored so far lives: a task and its fd number there. */
  private readonly placed = new Map<number, { pid: number; fd: number }>();
  /** Descriptions opened here (also those opened aside): their owner and O_ASYNC are set after post-open. */
  private readonly ownedLater: { task: RestoreTask; fd: number; entry: object }[] = [];
  /** The descriptions opened (not fetched), in order: the post-open step's work. */
  private readonly openedHere: { task: RestoreTask; kind: FileKind; entry: object; id: number; fd: number }[] = [];

  /**
   * Fills the fd tables of every task, step by step (FD_RESTORE_STEPS); tasks sharing an fd table
   * (CLONE_FILES) fill it once.
   */
  restoreAll(ctx: RestoreContext, tasks: RestoreTask[]): void {
    for (const step of FD_RESTORE_STEPS) {
      if (step === 'open') {
        const done = new Set<number>();
        for (const t of tasks) {
          if (done.has(t.ids.filesId)) continue;
          done.add(t.ids.filesId);
          this.restore(ctx, t);
        }
      }
      if (step === 'post-open') {
        const order = (k: FileKind) => k.restoreOrder ?? 0;
        const work = this.openedHere.filter((o) => o.kind.postOpen).sort((a, b) => order(a.kind) - order(b.kind));
        for (const o of work) {
          o.task.remote.resetData();
          o.kind.postOpen!(ctx, o.task, o.entry, o.fd, o.id);
        }
      }
    }
    // owners and O_ASYNC last: what post-open does (a queue refilled, a connect) raises no signal
    for (const o of this.ownedLater.splice(0)) {
      o.task.remote.resetData();
      applyFown(ctx.log, o.task, o.fd, o.entry);
    }
    for (const t of tasks) ctx.fds.closeParked(t);
    this.closeAside();
  }

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
    const entry = elsewhere ? undefined : ctx.files.entry(kind, id);
    const got = entry === undefined ? fetchFd(task.remote, elsewhere!.pid, elsewhere!.fd) : kind.openDescription(ctx, task, entry, id);
    const { entries } = ctx.store.read<FdinfoEntry>('fdinfo', `fdinfo-${task.ids.filesId}`);
    const high = task.remote.sys.with(`file id ${id}`).fcntl(got, F.DUPFD_CLOEXEC, Math.max(2, ...entries.map((e) => e.fd)) + 1);
    task.remote.sys.close(got);
    if (entry !== undefined) this.ownedLater.push({ task, fd: high, entry });
    if (!elsewhere) this.placed.set(id, { pid: task.pid, fd: high });
    this.aside.push({ task, fd: high });
    return high;
  }

  closeAside(): void {
    for (const { task, fd } of this.aside.splice(0)) task.remote.sysRaw.close(fd);
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
    // Descriptions fetched from other tasks (what a forked child inherited) are placed a run at a
    // time, in one stop; a run ends before each description this task opens itself, which may
    // need those before it in place (an epoll's targets, an inotify watch through /proc/self/fd).
    const fetching = new Map<number, FetchedDescription>();
    const above = Math.max(2, ...dumped.map((e) => e.fd));
    const placeFetching = () => {
      if (fetching.size) placeFetched(remote, [...fetching.values()], above);
      fetching.clear();
    };
    for (const e of entries) {
      const desc = ctx.files.get(e.id);
      const kind = this.kinds.find((k) => k.fdType === desc.type);
      if (!kind) throw new AmberError(`fd ${e.fd} of pid ${task.pid}: no plugin restores file type ${desc.type}`);
      remote.resetData();
      const cloexec = e.flags & FD_CLOEXEC ? O.CLOEXEC : 0;
      const queued = fetching.get(e.id);
      if (queued) {
        queued.targets.push({ fd: e.fd, cloexec: cloexec !== 0 });
        continue;
      }
      const existing = opened.get(e.id);
      if (existing !== undefined) {
        remote.sys.with(`fd ${e.fd}`).dup3(existing, e.fd, cloexec);
        continue;
      }
      const elsewhere = this.placed.get(e.id);
      const entry = elsewhere ? undefined : ctx.files.entry(kind, e.id);
      if (entry === undefined) {
        fetching.set(e.id, { fromPid: elsewhere!.pid, fromFd: elsewhere!.fd, targets: [{ fd: e.fd, cloexec: cloexec !== 0 }] });
        opened.set(e.id, e.fd);
        continue;
      }
      placeFetching();
      const got = kind.openDescription(ctx, task, entry, e.id);
      if (got !== e.fd) {
        remote.invokeMany([
          { name: 'dup3', args: [got, e.fd, cloexec], detail: `fd ${e.fd}` },
          { name: 'close', args: [got] },
        ]);
      } else {
        // a fetched fd always arrives close-on-exec, and a kind may hand over one it fetched
        remote.sys.with(`fd ${e.fd}`).fcntl(e.fd, 2 /* F_SETFD */, cloexec ? FD_CLOEXEC : 0);
      }
      opened.set(e.id, e.fd);
      this.placed.set(e.id, { pid: task.pid, fd: e.fd });
      this.openedHere.push({ task, kind, entry, id: e.id, fd: e.fd });
      this.ownedLater.push({ task, fd: e.fd, entry });
    }
    placeFetching();
  }
}
