import { F, fetchFd, O, openAsTask, SYS, type FdinfoEntry, type RemoteSyscall, type RestoreContext, type RestoreTask } from '@amber/core';

// Helpers for building descriptions inside a task being restored.

const CHUNK = 128 * 1024;

/** Writes data to fd in the task (at offset with pwrite64 when given), through the scratch area. */
export function writeAll(remote: RemoteSyscall, fd: number, data: Buffer, what: string, offset?: bigint): void {
  for (let done = 0; done < data.length;) {
    remote.resetData();
    const part = data.subarray(done, done + CHUNK);
    const addr = remote.stage(part);
    const n = offset === undefined
      ? remote.call('write', SYS.write, [fd, addr, part.length], what)
      : remote.call('pwrite64', SYS.pwrite64, [fd, addr, part.length, offset + BigInt(done)], what);
    done += n;
  }
  remote.resetData();
}

/** Opens path in the task with the task's own credentials (core's openAsTask). */
export function openInTask(task: RestoreTask, path: string, flags: number, mode = 0): number {
  return openAsTask(task, path, flags, mode);
}

/** Sets the status flags (O_NONBLOCK, O_APPEND...) a description had. */
export function setStatusFlags(remote: RemoteSyscall, fd: number, flags: number): void {
  const settable = flags & (O.NONBLOCK | O.APPEND);
  if (settable) remote.call('fcntl(F_SETFL)', SYS.fcntl, [fd, F.SETFL, settable], `fd ${fd}`);
}

interface Parked {
  byKey: Map<string, number>;
  floor: number;
}

/**
 * fds a kind keeps in the task between descriptions (the other end of a pipe, a FIFO's keeper, a
 * memfd to reopen), above every fd number of the dumped table so no dup3 into place hits them.
 * The plugin closes the leftovers once the fd table is done.
 */
function parkedOf(ctx: RestoreContext, task: RestoreTask): Parked {
  return ctx.state(`fs:parked:${task.pid}`, () => {
    const { entries } = ctx.store.read<FdinfoEntry>('fdinfo', `fdinfo-${task.ids.filesId}`);
    return { byKey: new Map<string, number>(), floor: Math.max(2, ...entries.map((e) => e.fd)) + 1 };
  });
}

/** Which task holds each parked fd: another task may ask for it (the far end of a pipe). */
function ownersOf(ctx: RestoreContext): Map<string, RestoreTask> {
  return ctx.state('fs:parked-owners', () => new Map<string, RestoreTask>());
}

export function park(ctx: RestoreContext, task: RestoreTask, key: string, fd: number): number {
  const parked = parkedOf(ctx, task);
  const high = task.remote.call('fcntl(F_DUPFD_CLOEXEC)', SYS.fcntl, [fd, F.DUPFD_CLOEXEC, parked.floor], key);
  task.remote.call('close', SYS.close, [fd]);
  parked.byKey.set(key, high);
  ownersOf(ctx).set(key, task);
  return high;
}

/** A parked fd for this task to use in place; one parked by another task is fetched and parked here too. */
export function parked(ctx: RestoreContext, task: RestoreTask, key: string): number | undefined {
  const owner = ownersOf(ctx).get(key);
  if (!owner) return undefined;
  const fd = parkedOf(ctx, owner).byKey.get(key);
  if (fd === undefined || owner === task) return fd;
  const fetched = fetchFd(task.remote, owner.pid, fd);
  const mine = task.remote.call('fcntl(F_DUPFD_CLOEXEC)', SYS.fcntl, [fetched, F.DUPFD_CLOEXEC, parkedOf(ctx, task).floor], key);
  task.remote.call('close', SYS.close, [fetched]);
  parkedOf(ctx, task).byKey.set(`${key}@${task.pid}`, mine);
  return mine;
}

/**
 * Hands a parked fd over to the caller, who will dup it into place and close it. When another
 * task parked it, the task gets its own fd for the same description and the owner lets go.
 */
export function unpark(ctx: RestoreContext, task: RestoreTask, key: string): number | undefined {
  const owner = ownersOf(ctx).get(key);
  if (!owner) return undefined;
  const p = parkedOf(ctx, owner);
  const fd = p.byKey.get(key);
  p.byKey.delete(key);
  ownersOf(ctx).delete(key);
  if (fd === undefined || owner === task) return fd;
  const mine = fetchFd(task.remote, owner.pid, fd);
  owner.remote.call('close', SYS.close, [fd]);
  return mine;
}

export function closeParked(ctx: RestoreContext, task: RestoreTask): void {
  const p = parkedOf(ctx, task);
  for (const [key, fd] of p.byKey) {
    task.remote.call('close', SYS.close, [fd]);
    ownersOf(ctx).delete(key);
  }
  p.byKey.clear();
}

