import { F, O, SYS } from '../kernel/constants';
import { fetchFd } from '../task/fd-transfer';
import { openAsTask } from '../task/task-files';
import type { RemoteSyscall } from '../ptrace/remote-syscall';
import type { FdinfoEntry, ImageStore } from '../images';
import type { RestoreTask } from './plugin';

// What every fd-owning plugin needs to build descriptions inside a task being restored.

const CHUNK = 128 * 1024;

/** Writes data to fd in the task (at offset with pwrite64 when given), through the scratch area. */
export function writeAll(remote: RemoteSyscall, fd: number, data: Buffer, what: string, offset?: bigint): void {
  for (let done = 0; done < data.length;) {
    remote.resetData();
    const part = data.subarray(done, done + CHUNK);
    const addr = remote.stage(part);
    const n = offset === undefined
      ? remote.sys.with(what).write(fd, addr, part.length)
      : remote.sys.with(what).pwrite64(fd, addr, part.length, offset + BigInt(done));
    done += n;
  }
  remote.resetData();
}

/** Sets the status flags (O_NONBLOCK, O_APPEND...) a description had. */
export function setStatusFlags(remote: RemoteSyscall, fd: number, flags: number): void {
  const settable = flags & (O.NONBLOCK | O.APPEND);
  if (settable) remote.sys.with(`fd ${fd}`).fcntl(fd, F.SETFL, settable);
}

interface Parked {
  byKey: Map<string, number>;
  floor: number;
}

/**
 * fds a kind keeps in the task between descriptions (the other end of a pipe, a FIFO's keeper, a
 * memfd to reopen), above every fd number of the dumped table so no dup3 into place hits them.
 * The core closes the leftovers once every fd table and every post-open step is done. One per
 * restore: `ctx.fds`.
 */
export class TaskFds {
  private readonly parkedIn = new Map<number, Parked>();
  /** Which task holds each parked fd: another task may ask for it (the far end of a pipe). */
  private readonly owners = new Map<string, RestoreTask>();

  constructor(private readonly store: ImageStore) {}

  /** Opens path in the task with the task's own credentials (core's openAsTask). */
  open(task: RestoreTask, path: string, flags: number, mode = 0): number {
    return openAsTask(task, path, flags, { mode });
  }

  private parkedOf(task: RestoreTask): Parked {
    let p = this.parkedIn.get(task.pid);
    if (!p) {
      const { entries } = this.store.read<FdinfoEntry>('fdinfo', `fdinfo-${task.ids.filesId}`);
      p = { byKey: new Map<string, number>(), floor: Math.max(2, ...entries.map((e) => e.fd)) + 1 };
      this.parkedIn.set(task.pid, p);
    }
    return p;
  }

  /** Keeps fd in the task under key (moved above the fd table); returns its new number. */
  park(task: RestoreTask, key: string, fd: number): number {
    const parked = this.parkedOf(task);
    const high = task.remote.sys.with(key).fcntl(fd, F.DUPFD_CLOEXEC, parked.floor);
    task.remote.sys.close(fd);
    parked.byKey.set(key, high);
    this.owners.set(key, task);
    return high;
  }

  /** A parked fd for this task to use in place; one parked by another task is fetched and parked here too. */
  parked(task: RestoreTask, key: string): number | undefined {
    const owner = this.owners.get(key);
    if (!owner) return undefined;
    const fd = this.parkedOf(owner).byKey.get(key);
    if (fd === undefined || owner === task) return fd;
    const fetched = fetchFd(task.remote, owner.pid, fd);
    const mine = task.remote.sys.with(key).fcntl(fetched, F.DUPFD_CLOEXEC, this.parkedOf(task).floor);
    task.remote.sys.close(fetched);
    this.parkedOf(task).byKey.set(`${key}@${task.pid}`, mine);
    return mine;
  }

  /** Where a parked fd is, to use it in place in the task that parked it. */
  parkedAt(key: string): { task: RestoreTask; fd: number } | undefined {
    const task = this.owners.get(key);
    const fd = task && this.parkedOf(task).byKey.get(key);
    return task && fd !== undefined ? { task, fd } : undefined;
  }

  /**
   * Hands a parked fd over to the caller, who will dup it into place and close it. When another
   * task parked it, the task gets its own fd for the same description and the owner lets go.
   */
  unpark(task: RestoreTask, key: string): number | undefined {
    const owner = this.owners.get(key);
    if (!owner) return undefined;
    const p = this.parkedOf(owner);
    const fd = p.byKey.get(key);
    p.byKey.delete(key);
    this.owners.delete(key);
    if (fd === undefined || owner === task) return fd;
    const mine = fetchFd(task.remote, owner.pid, fd);
    owner.remote.sys.close(fd);
    return mine;
  }

  closeParked(task: RestoreTask): void {
    const p = this.parkedIn.get(task.pid);
    if (!p) return;
    for (const [key, fd] of p.byKey) {
      task.remote.sys.close(fd);
      this.owners.delete(key);
    }
    p.byKey.clear();
  }
}
