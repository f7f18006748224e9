import { AmberError, errnoNumber, KernelError } from '../kernel/errors';
import type { CredsEntry } from '../images';
import type { RemoteSyscall, TableCall } from '../ptrace/remote-syscall';
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
const deciding = new WeakSet<RemoteSyscall>();

/**
 * Runs fn with the task's fsuid, fsgid and groups in force in the task (its main thread, where
 * amber injects), then puts back what it had. Nested calls run inside the outer switch.
 */
export function asTask<T>(task: FileOpener, fn: () => T): T {
  const remote = task.remote;
  if (!task.creds || switched.has(remote) || deciding.has(remote)) return fn();
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
  // inside another asTaskOrCaller (an open while re-creating a file): that one decides
  if (deciding.has(task.remote)) return fn();
  const decided = () => {
    deciding.add(task.remote);
    try {
      return fn();
    } finally {
      deciding.delete(task.remote);
    }
  };
  try {
    return asTask(task, decided);
  } catch (err) {
    if (!(err instanceof KernelError) || (err.errno !== EACCES && err.errno !== EPERM) || !task.creds) throw err;
    if (callerIsPrivileged()) return decided();
    const c = task.creds;
    throw new TaskAccessError(
      `pid ${task.remote.pid} may not ${what} as its own user (uid ${c.fsuid}, gid ${c.fsgid}): ${err.errnoName}; ` +
        'a restore opens every file with the credentials of the task that gets it',
    );
  }
}

export interface OpenOptions {
  /** Permission bits of a file it creates. */
  mode?: number;
  /**
   * Whose identity the kernel checks the path with: the task's dumped credentials (default, see
   * asTaskOrCaller), or the one the task runs with now — at dump its own, at restore amber's until
   * its credentials are restored last: for amber's own files (images) and /proc/self/map_files.
   */
  identity?: 'task' | 'current';
  /** Return -errno instead of throwing, for a caller that handles the failure (as the task, never retried as amber). */
  raw?: boolean;
  /** What the open is for, in a refusal: "pid N may not <what> as its own user". */
  what?: string;
}

/**
 * open(2) of path in the task: the one way amber opens a path there. Returns the fd; throws a
 * KernelError naming the path (or, with `raw`, returns -errno).
 */
export function openAsTask(task: FileOpener, path: string, flags: number, options: OpenOptions = {}): number {
  const { mode = 0, identity = 'task', raw = false, what = `open ${path}` } = options;
  const open = () => {
    task.remote.resetData();
    const fd = raw ? task.remote.sysRaw.open(path, flags, mode) : task.remote.sys.open(path, flags, mode);
    task.remote.resetData();
    return fd;
  };
  if (identity === 'current') return open();
  return raw ? asTask(task, open) : asTaskOrCaller(task, what, open);
}

/**
 * openAsTask of several paths in one stop of the task (a restored process maps its binary and
 * its libraries: an open each was a stop each), after `before` (calls that open nothing, so the
 * identity they run with does not matter; one that fails is thrown). An open that fails there
 * goes again through openAsTask, which says why, or opens it as the caller may.
 */
export function openManyAsTask(task: FileOpener, files: readonly { path: string; flags: number }[], before: readonly TableCall[] = []): number[] {
  const { results, error } = asTask(task, () => {
    task.remote.resetData();
    const outcome = task.remote.runCalls([...before, ...files.map((f): TableCall => ({ name: 'open', args: [f.path, f.flags, 0], detail: f.path }))]);
    task.remote.resetData();
    return outcome;
  });
  if (error && results.filter((r) => r !== undefined).length <= before.length) throw error;
  return files.map((f, i) => {
    const fd = results[before.length + i];
    return fd !== undefined && fd >= 0 ? fd : openAsTask(task, f.path, f.flags);
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
  remote.sys.with(`groups ${id.groups.join(',') || 'none'}`).setgroups(id.groups.length, groups);
  remote.resetData();
  remote.sysRaw.setfsgid(id.fsgid);
  remote.sysRaw.setfsuid(id.fsuid);
  const now = identityOf(remote.pid);
  if (now.fsuid !== id.fsuid || now.fsgid !== id.fsgid) {
    throw new AmberError(`pid ${remote.pid}: cannot take fsuid ${id.fsuid}, fsgid ${id.fsgid} to open its files (has ${now.fsuid}, ${now.fsgid})`);
  }
}
