import { closeSync, fstatSync, openSync, constants as fsConstants } from 'node:fs';
import { SYS } from './constants';
import { AmberError } from './errors';
import { syscall, syscallRaw } from './libc';

/** The namespaces amber visits from its own thread (setns and back), with their CLONE_NEW* flag and name. */
const NAMESPACES = {
  net: { flag: 0x40000000, name: 'network' },
  ipc: { flag: 0x08000000, name: 'IPC' },
} as const;
export type VisitedNamespace = keyof typeof NAMESPACES;

/** The CLONE_NEW* flag of a namespace kind (setns, unshare). */
export const namespaceFlag = (kind: VisitedNamespace): number => NAMESPACES[kind].flag;

const nsPath = (kind: VisitedNamespace, pid: number | 'self') => (pid === 'self' ? `/proc/thread-self/ns/${kind}` : `/proc/${pid}/ns/${kind}`);

/** A namespace's identity: the inode of its nsfs file (pid 'self': amber's own thread's). */
export function namespaceOf(kind: VisitedNamespace, pid: number | 'self'): bigint {
  const fd = openSync(nsPath(kind, pid), fsConstants.O_RDONLY);
  try {
    return fstatSync(fd, { bigint: true }).ino;
  } finally {
    closeSync(fd);
  }
}

/**
 * Runs fn with amber's thread in pid's namespace of this kind, and comes back whatever happens
 * (a namespace change is per thread; what fn makes there, a socket say, keeps its namespace).
 */
export function inNamespaceOf<T>(kind: VisitedNamespace, pid: number, fn: () => T): T {
  const { flag, name } = NAMESPACES[kind];
  const theirs = openSync(nsPath(kind, pid), fsConstants.O_RDONLY);
  const home = openSync(nsPath(kind, 'self'), fsConstants.O_RDONLY);
  try {
    if (fstatSync(theirs, { bigint: true }).ino === fstatSync(home, { bigint: true }).ino) return fn();
    syscall(`setns(${kind})`, SYS.setns, [theirs, flag], { pid });
    try {
      return fn();
    } finally {
      const back = syscallRaw(SYS.setns, [home, flag]);
      if (back < 0) throw new AmberError(`amber could not return to its own ${name} namespace after visiting pid ${pid}'s (errno ${-back}); stopping`);
    }
  } finally {
    closeSync(theirs);
    closeSync(home);
  }
}
