import { dirname, basename, join } from 'node:path';
import { AT, O } from '../kernel/constants';
import { errnoNumber, KernelError } from '../kernel/errors';
import { faultPoint } from '../engine/fault';
import { asTaskOrCaller, callerIsPrivileged, openAsTask, type FileOpener } from './task-files';
import { restoringUser } from './process-state';

/** A file that was deleted while open (or mapped), to be made again for a task. */
export interface UnlinkedFileSpec {
  /** Where it was: it is linked there (or beside it, when that name is taken) for a moment. */
  path: string;
  uid: number;
  gid: number;
  /** Permission bits, set-id bits included, as dumped. */
  mode: number;
  /** A short tag for the name used when path is taken (the ghost's id). */
  tag: string;
}

export interface RecreatedFile<T> {
  /** An fd of the new file, open read-write, without its name. */
  writer: number;
  /** What `open` returned while the file had its name. */
  opened: T;
  /** The mode it was given (set-id bits the restoring user may not set are dropped). */
  mode: number;
}

const EEXIST = errnoNumber('EEXIST');
const EOPNOTSUPP = errnoNumber('EOPNOTSUPP');
const EISDIR = errnoNumber('EISDIR');
const SET_ID = 0o6000;

/**
 * Set-id bits stay only when the restoring user could have set them: the file is theirs, or they
 * are really root (not acting for someone through sudo).
 */
export function grantableMode(spec: Pick<UnlinkedFileSpec, 'uid' | 'mode'>): number {
  const mode = spec.mode & 0o7777;
  if (!(mode & SET_ID) || callerIsPrivileged() || spec.uid === restoringUser().uid) return mode;
  return mode & ~SET_ID;
}

/**
 * Makes an unlinked file again, in the task and with its credentials: an unnamed O_TMPFILE in the
 * old directory, filled and given its owner while nobody can reach it, then linked at its old
 * name (with owner-only permissions and no set-id bits) just long enough for `open` to open it by
 * that name (so its fds read "<path> (deleted)" as before), unlinked again, and only then given
 * its full mode. Whatever fails on the way, no name is left behind.
 */
export function recreateUnlinkedFile<T>(
  task: FileOpener, spec: UnlinkedFileSpec, fill: (fd: number) => void, open: (path: string) => T,
): RecreatedFile<T> {
  const mode = grantableMode(spec);
  return asTaskOrCaller(task, `re-create the unlinked file ${spec.path} (owner ${spec.uid}:${spec.gid})`, () => {
    const remote = task.remote;
    let writer = -1;
    let linked: string | undefined;
    try {
      writer = openAsTask(task, dirname(spec.path), O.TMPFILE | O.RDWR | O.CLOEXEC, { mode: 0o600, raw: true });
      const noTmpfile = writer === -EOPNOTSUPP || writer === -EISDIR;
      if (noTmpfile) {
        // No O_TMPFILE on this filesystem: a private (0600) file under a name of our own instead.
        linked = besideName(spec, task.remote.pid);
        writer = openAsTask(task, linked, O.CREAT | O.EXCL | O.RDWR | O.CLOEXEC, { mode: 0o600 });
      } else if (writer < 0) {
        throw new KernelError('open(O_TMPFILE) (in the task)', -writer, remote.pid, dirname(spec.path));
      }
      fill(writer);
      remote.sys.with(`${spec.path} to ${spec.uid}:${spec.gid}`).fchown(writer, spec.uid, spec.gid);
      remote.sys.with(spec.path).fchmod(writer, (mode & 0o777) | 0o600);
      if (!noTmpfile) linked = linkTmpfile(task, writer, spec);
      const opened = open(linked!);
      faultPoint('restore:ghost');
      const name = linked!;
      linked = undefined;
      remote.resetData();
      remote.sys.unlink(name);
      remote.sys.with(spec.path).fchmod(writer, mode);
      remote.resetData();
      return { writer, opened, mode };
    } catch (err) {
      if (linked !== undefined) {
        remote.resetData();
        remote.sysRaw.unlink(linked);
      }
      if (writer >= 0) remote.sysRaw.close(writer);
      remote.resetData();
      throw err;
    }
  });
}

/** Links the unnamed file at its old path, or beside it when that is taken; returns where. */
function linkTmpfile(task: FileOpener, fd: number, spec: UnlinkedFileSpec): string {
  const remote = task.remote;
  // /proc/self/fd/N with AT_SYMLINK_FOLLOW links the open file without needing CAP_DAC_READ_SEARCH
  // (which AT_EMPTY_PATH does).
  const link = (to: string) => {
    remote.resetData();
    return remote.sysRaw.linkat(AT.FDCWD, `/proc/self/fd/${fd}`, AT.FDCWD, to, AT.SYMLINK_FOLLOW);
  };
  let at = spec.path;
  let r = link(at);
  if (r === -EEXIST) r = link((at = besideName(spec, remote.pid)));
  if (r < 0) throw new KernelError('linkat (in the task)', -r, remote.pid, at);
  return at;
}

function besideName(spec: UnlinkedFileSpec, pid: number): string {
  return join(dirname(spec.path), `.${basename(spec.path)}.amber-ghost-${spec.tag}-${pid}`);
}
