import { closeSync, fstatSync, openSync, constants as fsConstants } from 'node:fs';
import { SYS } from './constants';
import { AmberError } from './errors';
import { syscall, syscallRaw } from './libc';
import { socket } from './sockets';

// A socket answers for the network namespace it was made in: sock_diag, a netlink route query or
// an interface lookup made from amber's namespace sees nothing of a task that lives in another
// one. So the sockets amber asks the kernel through are made in the task's namespace (setns on
// amber's own thread and back: a namespace change is per thread, and every socket keeps the
// namespace it was created in).

const CLONE_NEWNET = 0x40000000;

/** A network namespace's identity: the inode of its nsfs file. */
export function netnsOf(pid: number | 'self'): bigint {
  const fd = openSync(`/proc/${pid}/ns/net`, fsConstants.O_RDONLY);
  try {
    return fstatSync(fd, { bigint: true }).ino;
  } finally {
    closeSync(fd);
  }
}

/** Runs make() with amber's thread in pid's network namespace, and comes back whatever happens. */
export function inNetnsOf<T>(pid: number, make: () => T): T {
  const theirs = openSync(`/proc/${pid}/ns/net`, fsConstants.O_RDONLY);
  const home = openSync('/proc/self/ns/net', fsConstants.O_RDONLY);
  try {
    if (fstatSync(theirs, { bigint: true }).ino === fstatSync(home, { bigint: true }).ino) return make();
    syscall('setns(net)', SYS.setns, [theirs, CLONE_NEWNET], { pid });
    try {
      return make();
    } finally {
      const back = syscallRaw(SYS.setns, [home, CLONE_NEWNET]);
      if (back < 0) throw new AmberError(`amber could not return to its own network namespace after visiting pid ${pid}'s (errno ${-back}); stopping`);
    }
  } finally {
    closeSync(theirs);
    closeSync(home);
  }
}

/** A socket of amber's own, made in pid's network namespace. */
export function socketInNetnsOf(pid: number, domain: number, type: number, protocol = 0): number {
  return inNetnsOf(pid, () => socket(domain, type, protocol));
}
