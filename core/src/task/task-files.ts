import { SYS } from '../kernel/constants';
import { AmberError, errnoNumber, KernelError } from '../kernel/errors';
import type { CredsEntry } from '../images';
import type { RemoteSyscall } from '../ptrace/remote-syscall';
import { parseStatus, procRead } from './proc';
import { restoringUser } from './process-state';

// A restored task gets its files, directories, FIFOs, mappings and watched paths opened by the
// task itself, with the filesystem identity it had (fsuid, fsgid, supplementary groups), not
// amber's: the kernel then checks every path as it would have for the task. The task runs as
// amber (root) until its credentials are restored last, so the identity is switched around each
// such call and switched back after it, leaving amber's capabilities for the rest of the restore.

/** What the kernel checks file access with. */
export interface FsIdentity {
  fsuid: number;
  fsgid: number;
  groups: number[];
}

/** A task being restored, as far as opening its files is concerned. */
export interface FileOpener {
  readonly remote: RemoteSyscall;
  /** Its dumped credentials (absent for images without them: amber's own are used). */
  readonly creds?: CredsEntry;
}

export class TaskAccessError extends AmberError {}

const EACCES = errnoNumber('EACCES');
const EPERM = errnoNumber('EPERM');

const switched = new WeakSet<RemoteSyscall>();

/**
 * Runs fn with the task's fsuid, fsgid and groups in force in the task (its main thread, where
 * amber injects), then puts back what it had. Nested calls run inside the outer switch.
 */
export function asTask<T>(task: FileOpener, fn: () => T): T {
  const remote = task.remote;
  if (!task.creds || switched.has(remote)) return fn();
  const want: FsIdentity = { fsuid: task.creds.fsuid, fsgid: task.creds.fsgid, groups: task.creds.groups };
  const had = identityOf(remote.pid);
  if (sameIdentity(had, want)) return fn();
  setIdentity(remote, want);
  switched.add(remote);
  try {
    return fn();
  } finally {
    switched.delete(remote);
    setIdentity(remote, had);
  }
}

/**
 * Like asTask, but a caller who is really root (not acting for a sudo user) may give the task
 * what the task itself may not open: a process that opened a file before dropping its privileges
 * (a daemon's log, say) comes back as it was, as root could have given it anyway. fn is run
 * again as amber then, so it must leave nothing behind when it fails.
 */
export function asTaskOrCaller<T>(task: FileOpener, what: string, fn: () => T): T {
  try {
    return asTask(task, fn);
  } catch (err) {
    if (!(err instanceof KernelError) || (err.errno !== EACCES && err.errno !== EPERM) || !task.creds) throw err;
    if (callerIsPrivileged()) return fn();
    const c = task.creds;
    throw new TaskAccessError(
      `pid ${task.remote.pid} may not ${what} as its own user (uid ${c.fsuid}, gid ${c.fsgid}): ${err.errnoName}; ` +
        'a restore opens every file with the credentials of the task that gets it',
    );
  }
}

/** open(2) of path in the task, as the task (see asTaskOrCaller). */
export function openAsTask(task: FileOpener, path: string, flags: number, mode = 0, what = `open ${path}`): number {
  return asTaskOrCaller(task, what, () => {
    task.remote.resetData();
    const fd = task.remote.call('open', SYS.open, [task.remote.stageString(path), flags, mode], path);
    task.remote.resetData();
    return fd;
  });
}

/** root running amber itself, not through sudo for another user. */
export function callerIsPrivileged(): boolean {
  return process.geteuid?.() === 0 && restoringUser().uid === 0;
}

function identityOf(pid: number): FsIdentity {
  const st = parseStatus(procRead(pid, 'status'));
  const fourth = (k: string) => Number((st.get(k) ?? '').split(/\s+/)[3]);
  const groups = (st.get('Groups') ?? '').split(/\s+/).filter(Boolean).map(Number);
  return { fsuid: fourth('Uid'), fsgid: fourth('Gid'), groups };
}

function sameIdentity(a: FsIdentity, b: FsIdentity): boolean {
  return a.fsuid === b.fsuid && a.fsgid === b.fsgid && a.groups.length === b.groups.length && a.groups.every((g, i) => g === b.groups[i]);
}

/**
 * Groups and fsgid first, while amber's fsuid (and so its capabilities) still holds; setfsuid
 * away from 0 drops the file capabilities (CAP_DAC_OVERRIDE, CAP_CHOWN, CAP_FOWNER...) from the
 * effective set, and back to 0 raises them again from the permitted set. setfs[ug]id never fails
 * visibly (it returns the old value), so the result is read back.
 */
function setIdentity(remote: RemoteSyscall, id: FsIdentity): void {
  remote.resetData();
  const groups = Buffer.alloc(Math.max(4, id.groups.length * 4));
  id.groups.forEach((g, i) => groups.writeUInt32LE(g, i * 4));
  remote.call('setgroups', SYS.setgroups, [id.groups.length, remote.stage(groups)], `groups ${id.groups.join(',') || 'none'}`);
  remote.resetData();
  remote.callRaw(SYS.setfsgid, [id.fsgid]);
  remote.callRaw(SYS.setfsuid, [id.fsuid]);
  const now = identityOf(remote.pid);
  if (now.fsuid !== id.fsuid || now.fsgid !== id.fsgid) {
    throw new AmberError(`pid ${remote.pid}: cannot take fsuid ${id.fsuid}, fsgid ${id.fsgid} to open its files (has ${now.fsuid}, ${now.fsgid})`);
  }
}
