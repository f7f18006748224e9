import { asTaskOrCaller, O, procRead, readLink, parseStatus, type DumpContext, type RestoreContext, type CompareContext, type Difference, type FsEntry, type TableCall } from '@amber/core';

export function dumpFsState(ctx: DumpContext): void {
  for (const task of ctx.tasks) {
    const umask = parseInt(parseStatus(procRead(task.pid, 'status')).get('Umask') ?? '22', 8);
    const entry: FsEntry = {
      cwdId: ctx.files.addRegular(readLink(task.pid, 'cwd'), O.RDONLY | O.DIRECTORY),
      rootId: ctx.files.addRegular(readLink(task.pid, 'root'), O.RDONLY | O.DIRECTORY),
      umask,
    };
    ctx.store.write('fs', `fs-${task.pid}`, [entry]);
  }
}

export function restoreFsState(ctx: RestoreContext): void {
  for (const task of ctx.tasks) {
    const fs = ctx.store.readOne<FsEntry>('fs', `fs-${task.pid}`);
    const remote = task.remote;
    remote.resetData();
    const root = ctx.files.regular(fs.rootId).name;
    const cwd = ctx.files.regular(fs.cwdId).name;
    // the task enters its root and cwd as itself: search permission is checked for it
    if (root !== '/') asTaskOrCaller(task, `chroot to ${root}`, () => remote.sys.chroot(root));
    remote.resetData();
    // with the umask in the same stop (it is set again if the chdir is retried as the caller)
    const umask: TableCall[] = fs.umask !== undefined ? [{ name: 'umask', args: [fs.umask] }] : [];
    asTaskOrCaller(task, `enter its working directory ${cwd}`, () => remote.invokeMany([{ name: 'chdir', args: [cwd] }, ...umask]));
  }
}

export function compareFsState(ctx: CompareContext): Difference[] {
  const files = ctx.files;
  const out: Difference[] = [];
  for (const pid of ctx.pids) {
    const fs = ctx.store.readOne<FsEntry>('fs', `fs-${pid}`);
    const cwd = readLink(pid, 'cwd');
    const dumped = files.regular(fs.cwdId).name;
    if (cwd !== dumped) out.push({ plugin: 'fs', pid, what: 'cwd', expected: dumped, actual: cwd });
  }
  return out;
}
