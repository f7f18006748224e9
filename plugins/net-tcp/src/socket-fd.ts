import { constants } from 'node:fs';
import { identityOfTaskSocket, netnsOf, type DumpContext, type FdResource, type SocketIdentity } from '@amber/core';

const S_IFSOCK = 0o140000;

/** A socket fd's identity (family, type, protocol), or undefined for any other fd. */
export function socketIdentityOf(fd: FdResource): SocketIdentity | undefined {
  if (!fd.link.startsWith('socket:[') || (fd.mode & constants.S_IFMT) !== S_IFSOCK) return undefined;
  return identityOfTaskSocket(fd.pid, fd.fd);
}

export const socketInode = (fd: FdResource): number => Number(fd.ino);

/**
 * What sock_diag says of pid's network namespace, asked once per dump and namespace: `list`
 * makes the answer (netlinkSockets, packetSockets ...).
 */
export function diagOfNetns<T>(ctx: DumpContext, what: string, pid: number, list: (pid: number) => T): T {
  const byNs = ctx.state(`net-tcp:${what}`, () => new Map<bigint, T>());
  const ns = netnsOf(pid);
  let found = byNs.get(ns);
  if (found === undefined) byNs.set(ns, (found = list(pid)));
  return found;
}
