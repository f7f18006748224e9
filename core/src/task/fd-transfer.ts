import type { RemoteSyscall } from '../ptrace/remote-syscall';

/**
 * Gives `into` its own fd for the open file description that task `fromPid` holds at `fd`: the
 * same description, so offset, flags and pipe ends stay shared between the two tasks. The calls
 * run inside `into`, in one stop (pidfd_open, pidfd_getfd on it, its close); the result is
 * close-on-exec.
 */
export function fetchFd(into: RemoteSyscall, fromPid: number, fd: number): number {
  const { results, error } = into.runCalls([
    { name: 'pidfd_open', args: [fromPid, 0], detail: `pid ${fromPid}` },
    { name: 'pidfd_getfd', args: [0, fd, 0], argsFrom: [{ arg: 0, call: 0 }], detail: `fd ${fd} of pid ${fromPid}` },
    { name: 'close', args: [0], argsFrom: [{ arg: 0, call: 0 }] },
  ]);
  const [pidfd, got, closed] = results;
  if (error) {
    // the pidfd was made but not closed
    if (pidfd !== undefined && pidfd >= 0 && closed === undefined) into.sysRaw.close(pidfd);
    // a failed close of the pidfd does not undo the fd got
    if (got === undefined || got < 0) throw error;
  }
  return got!;
}
