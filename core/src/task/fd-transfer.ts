import type { RemoteSyscall } from '../ptrace/remote-syscall';

/**
 * Gives `into` its own fd for the open file description that task `fromPid` holds at `fd`: the
 * same description, so offset, flags and pipe ends stay shared between the two tasks. Both calls
 * run inside `into` (pidfd_open + pidfd_getfd); the result is close-on-exec.
 */
export function fetchFd(into: RemoteSyscall, fromPid: number, fd: number): number {
  const pidfd = into.sys.with(`pid ${fromPid}`).pidfd_open(fromPid, 0);
  try {
    return into.sys.with(`fd ${fd} of pid ${fromPid}`).pidfd_getfd(pidfd, fd, 0);
  } finally {
    into.sysRaw.close(pidfd);
  }
}
