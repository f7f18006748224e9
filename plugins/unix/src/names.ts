import { chmodSync, chownSync, closeSync, fstatSync, lstatSync, openSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import {
  AmberError, O, asTaskOrCaller, describeUnixName, errnoName, readLink, unixSocket, unixSockets,
  type RestoreTask, type UnixDiagRecord,
} from '@amber/core';
import type { FilePermsEntry, UnixSkEntry } from './images';
import { bindRaw } from './remote';

// Bound names: abstract, a path (absolute or relative to where it was bound), a path since
// deleted; the socket file's owner and mode.

const S_IFMT = 0o170000;
const S_IFSOCK = 0o140000;

/** sock_diag reports the socket file's inode in 32 bits. */
const sameInode = (ino: number | undefined, diag: number | undefined) => ino !== undefined && diag !== undefined && ino % 2 ** 32 === diag;

export type NameFacts = Pick<UnixSkEntry, 'name' | 'nameDir' | 'deleted' | 'filePerms' | 'vfsDev' | 'vfsIno'>;

export class UnixNameError extends AmberError {}

/** What the file system says of a socket's bound name at dump time. */
export function describeName(pid: number, fd: number, name: Buffer, rec: UnixDiagRecord): NameFacts {
  const facts: NameFacts = { name };
  if (name.length === 0 || name[0] === 0) return facts;
  if (rec.vfs) {
    facts.vfsDev = rec.vfs.dev;
    facts.vfsIno = rec.vfs.ino;
  }
  const text = name.toString();
  let path = text;
  if (!text.startsWith('/')) {
    // A relative bind resolved in the binder's working directory then; the task's current one is
    // the only candidate amber can check.
    const cwd = readLink(pid, 'cwd');
    path = join(cwd, text);
    if (!sameInode(lstatSync(path, { throwIfNoEntry: false })?.ino, rec.vfs?.ino)) {
      throw new UnixNameError(`fd ${fd} of pid ${pid}: unix socket bound to the relative name ${text}, which does not resolve to it from the task's working directory ${cwd}`);
    }
    facts.nameDir = cwd;
  }
  const st = lstatSync(path, { throwIfNoEntry: false });
  if (st && (st.mode & S_IFMT) === S_IFSOCK && sameInode(st.ino, rec.vfs?.ino)) {
    facts.filePerms = { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
  } else {
    facts.deleted = true;
  }
  return facts;
}

/** The path a name is bound at, for amber (relative names joined to their directory). */
export function pathOf(e: NameFacts): string {
  const text = e.name.toString();
  return e.nameDir ? join(e.nameDir, text) : text;
}

export const isPathName = (name: Buffer) => name.length > 0 && name[0] !== 0;

/**
 * The socket file the dumped process left (or any socket file no live socket is bound to) is
 * removed so the name can be bound again; anything else at the path is the user's, and an error.
 */
function clearPath(e: UnixSkEntry, pid: number): void {
  const path = pathOf(e);
  const st = lstatSync(path, { throwIfNoEntry: false });
  if (!st) return;
  const isSocket = (st.mode & S_IFMT) === S_IFSOCK;
  const inUse = isSocket && !sameInode(st.ino, e.vfsIno) && [...unixSockets().values()].some((r) => sameInode(st.ino, r.vfs?.ino));
  if (!isSocket || inUse) {
    const what = isSocket ? 'a socket file another process is bound to' : 'a file that is not a socket';
    throw new UnixNameError(`pid ${pid}: cannot bind its unix socket to ${path}: the path is taken by ${what}; nothing was restored`);
  }
  unlinkSync(path);
}

/** Binds a restored socket to its name, as the task, in the directory it was bound in. */
export function bindName(task: RestoreTask, fd: number, e: UnixSkEntry): void {
  const remote = task.remote;
  if (isPathName(e.name)) clearPath(e, task.pid);
  asTaskOrCaller(task, `bind a unix socket to ${describeUnixName(e.name)}`, () => {
    let saved = -1;
    if (e.nameDir) {
      remote.resetData();
      saved = remote.sys.with('working directory').open(remote.stageString('.'), O.PATH | O.DIRECTORY | O.CLOEXEC, 0);
      remote.resetData();
      remote.sys.with(e.nameDir).chdir(remote.stageString(e.nameDir));
    }
    try {
      const r = bindRaw(remote, fd, e.name);
      if (r < 0) {
        if (r === -98 /* EADDRINUSE */ && !isPathName(e.name)) {
          throw new UnixNameError(`pid ${task.pid}: cannot bind its unix socket to ${describeUnixName(e.name)}: another socket holds that abstract name; nothing was restored`);
        }
        throw new UnixNameError(`pid ${task.pid}: bind of a unix socket to ${describeUnixName(e.name)} failed: ${errnoName(-r)}`);
      }
    } finally {
      if (saved >= 0) {
        remote.sys.fchdir(saved);
        remote.sys.close(saved);
      }
    }
  });
  if (isPathName(e.name) && e.filePerms) setPerms(task, fd, e, e.filePerms);
}

/**
 * The socket file gets the dumped owner and mode. amber (root) changes it through an O_PATH fd
 * of the file the new socket is bound to (sock_diag's inode), never by following the path again:
 * the directory may be writable by others, who could put a link there meanwhile.
 */
function setPerms(task: RestoreTask, fd: number, e: UnixSkEntry, perms: FilePermsEntry): void {
  const path = pathOf(e);
  const bound = unixSocket(Number(statSync(`/proc/${task.pid}/fd/${fd}`).ino))?.vfs;
  const file = openSync(path, O.PATH | O.NOFOLLOW | O.CLOEXEC);
  try {
    const st = fstatSync(file);
    if ((st.mode & S_IFMT) !== S_IFSOCK || !sameInode(st.ino, bound?.ino)) {
      throw new UnixNameError(`pid ${task.pid}: ${path} is no longer the socket file it just bound (replaced meanwhile); nothing was restored`);
    }
    chownSync(`/proc/self/fd/${file}`, perms.uid, perms.gid);
    chmodSync(`/proc/self/fd/${file}`, perms.mode);
  } finally {
    closeSync(file);
  }
}

/** A name deleted at dump time goes again once every connect to it is done. */
export function unlinkDeleted(e: UnixSkEntry): void {
  if (e.deleted && isPathName(e.name)) unlinkSync(pathOf(e));
}
