import { F, O } from '../kernel/constants';
import type { RemoteSyscall, TableCall } from '../ptrace/remote-syscall';

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

/** A description another task holds, to be placed at `targets` in the fetching task. */
export interface FetchedDescription {
  fromPid: number;
  fromFd: number;
  targets: { fd: number; cloexec: boolean }[];
}

/** Descriptions per call loop: five calls each, and the table must fit the scratch area. */
const PER_LOOP = 128;

/**
 * Places descriptions fetched from other tasks at their fd numbers in `into`, all in one stop
 * (per PER_LOOP of them) instead of two each. Every fd the loop makes on the way (a pidfd, a
 * fetched fd) is moved at once above `above`, the highest fd number the table is filled up to: a
 * lowest free number may be a target still to be placed, which a later dup3 would overwrite.
 */
export function placeFetched(into: RemoteSyscall, items: readonly FetchedDescription[], above: number): void {
  for (let at = 0; at < items.length; at += PER_LOOP) {
    const calls: TableCall[] = [];
    const from = (call: number, arg = 0) => ({ arg, call });
    const pidfds = new Map<number, number>();
    for (const it of items.slice(at, at + PER_LOOP)) {
      let pidfd = pidfds.get(it.fromPid);
      if (pidfd === undefined) {
        calls.push({ name: 'pidfd_open', args: [it.fromPid, 0], detail: `pid ${it.fromPid}` });
        calls.push({ name: 'fcntl', args: [0, F.DUPFD_CLOEXEC, above + 1], argsFrom: [from(calls.length - 1)], detail: `pidfd of pid ${it.fromPid}` });
        pidfds.set(it.fromPid, (pidfd = calls.length - 1));
        calls.push({ name: 'close', args: [0], argsFrom: [from(calls.length - 2)] });
      }
      calls.push({ name: 'pidfd_getfd', args: [0, it.fromFd, 0], argsFrom: [from(pidfd)], detail: `fd ${it.fromFd} of pid ${it.fromPid}` });
      const got = calls.length - 1;
      calls.push({ name: 'fcntl', args: [0, F.DUPFD_CLOEXEC, above + 1], argsFrom: [from(got)], detail: `fd ${it.fromFd} of pid ${it.fromPid}` });
      const high = calls.length - 1;
      calls.push({ name: 'close', args: [0], argsFrom: [from(got)] });
      for (const t of it.targets) calls.push({ name: 'dup3', args: [0, t.fd, t.cloexec ? O.CLOEXEC : 0], argsFrom: [from(high)], detail: `fd ${t.fd}` });
      calls.push({ name: 'close', args: [0], argsFrom: [from(high)] });
    }
    for (const pidfd of pidfds.values()) calls.push({ name: 'close', args: [0], argsFrom: [from(pidfd)] });
    // a failure fails the restore, whose undo kills the task: what it was left holding goes with it
    into.resetData();
    into.invokeMany(calls);
    into.resetData();
  }
}
