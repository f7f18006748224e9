import { F, fetchFd, SYS, type FdinfoEntry, type RestoreContext, type RestoreTask } from '@amber/core';
import { stateOf } from './images';

// Sockets made before their task's fd table reaches them wait here, above every fd number of the
// dumped table. (What plugins/fs has in task-fds.ts; both become the core's ctx.fds.park/unpark.)

interface Parked {
  byKey: Map<string, number>;
  floor: number;
}

function parkedIn(ctx: RestoreContext, task: RestoreTask): Parked {
  return stateOf(ctx, `parked:${task.pid}`, () => {
    const { entries } = ctx.store.read<FdinfoEntry>('fdinfo', `fdinfo-${task.ids.filesId}`);
    return { byKey: new Map<string, number>(), floor: Math.max(2, ...entries.map((e) => e.fd)) + 1 };
  });
}

const owners = (ctx: RestoreContext) => stateOf(ctx, 'parked-owners', () => new Map<string, RestoreTask>());

export function park(ctx: RestoreContext, task: RestoreTask, key: string, fd: number): number {
  const p = parkedIn(ctx, task);
  const high = task.remote.call('fcntl(F_DUPFD_CLOEXEC)', SYS.fcntl, [fd, F.DUPFD_CLOEXEC, p.floor], key);
  task.remote.call('close', SYS.close, [fd]);
  p.byKey.set(key, high);
  owners(ctx).set(key, task);
  return high;
}

/** Where a parked fd is, to use it in place (in its owner task). */
export function parkedAt(ctx: RestoreContext, key: string): { task: RestoreTask; fd: number } | undefined {
  const task = owners(ctx).get(key);
  const fd = task && parkedIn(ctx, task).byKey.get(key);
  return task && fd !== undefined ? { task, fd } : undefined;
}

/** Hands a parked fd over to `task` (fetched when another task parked it); the owner lets go. */
export function unpark(ctx: RestoreContext, task: RestoreTask, key: string): number | undefined {
  const at = parkedAt(ctx, key);
  if (!at) return undefined;
  parkedIn(ctx, at.task).byKey.delete(key);
  owners(ctx).delete(key);
  if (at.task === task) return at.fd;
  const mine = fetchFd(task.remote, at.task.pid, at.fd);
  at.task.remote.call('close', SYS.close, [at.fd]);
  return mine;
}

export function closeParked(ctx: RestoreContext, task: RestoreTask): void {
  const p = parkedIn(ctx, task);
  for (const [key, fd] of p.byKey) {
    task.remote.call('close', SYS.close, [fd]);
    owners(ctx).delete(key);
  }
  p.byKey.clear();
}
