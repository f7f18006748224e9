import { inNamespaceOf, namespaceOf } from './namespaces';
import { socket } from './sockets';

// A socket answers for the network namespace it was made in: sock_diag, a netlink route query or
// an interface lookup made from amber's namespace sees nothing of a task that lives in another
// one. So the sockets amber asks the kernel through are made in the task's namespace (setns on
// amber's own thread and back: a namespace change is per thread, and every socket keeps the
// namespace it was created in).

/** A network namespace's identity: the inode of its nsfs file. */
export const netnsOf = (pid: number | 'self'): bigint => namespaceOf('net', pid);

/** Runs make() with amber's thread in pid's network namespace, and comes back whatever happens. */
export const inNetnsOf = <T>(pid: number, make: () => T): T => inNamespaceOf('net', pid, make);

/** A socket of amber's own, made in pid's network namespace. */
export function socketInNetnsOf(pid: number, domain: number, type: number, protocol = 0): number {
  return inNetnsOf(pid, () => socket(domain, type, protocol));
}
