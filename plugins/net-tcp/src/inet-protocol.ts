import type {
  DumpContext, DumpTask, FdResource, FieldDifference, InetDiagRecord, InetEndpoint, RestoreContext, RestoreTask, SocketIdentity,
} from '@amber/core';
import type { InetSkEntry } from './generated';

/** An inet socket of a frozen task, as the inet kind found it (amber's copy stays open while the protocol dumps). */
export interface DumpedInetSocket {
  fd: FdResource;
  /** amber's own copy of the socket (pidfd_getfd). */
  copy: number;
  identity: SocketIdentity;
  /** What sock_diag says (undefined for sockets it does not list, such as ICMP ping sockets). */
  diag?: InetDiagRecord;
  local: InetEndpoint;
  peer?: InetEndpoint;
}

/** A live socket for compare: the same, without a task around it. */
export type LiveInetSocket = Omit<DumpedInetSocket, 'fd'> & { fd: FdResource };

/**
 * One inet protocol (TCP, UDP, raw ...): the inet kind fills the entry's common part (family,
 * type, protocol, addresses, ports, flags, options) and hands the rest to the protocol that
 * matches. At restore the protocol makes the socket in amber, in the task's network namespace
 * (the kind hands it to the task and sets the common options), bound, connected or listening as
 * it was.
 */
export interface InetProtocol {
  readonly name: string;
  matches(identity: SocketIdentity): boolean;
  /** The protocol's part of the entry (state, backlog, shutdown, queues); refuses what it cannot dump with one line. */
  dump(ctx: DumpContext, task: DumpTask, sock: DumpedInetSocket, entry: InetSkEntry): void;
  /**
   * Makes the socket in amber (the kind calls it inside the task's network namespace, after
   * applyBeforeBind-type options are known): returns amber's fd, bound and as far set up as the
   * protocol can without the other sockets of the tree.
   */
  open(ctx: RestoreContext, task: RestoreTask, entry: InetSkEntry): number;
  /** After every socket of the tree was made (connect to a peer of the tree, fill queues). fd is amber's. */
  postOpen?(ctx: RestoreContext, task: RestoreTask, entry: InetSkEntry, fd: number): void;
  /** Right before the tree runs (the 'resume' phase), on amber's fd: what must wait until every socket is ready (TCP leaves repair mode). */
  finish?(ctx: RestoreContext, entry: InetSkEntry, fd: number): void;
  /** Protocol-specific differences (states, queue lengths); the kind compares the common part. */
  compare?(live: LiveInetSocket, entry: InetSkEntry): FieldDifference[];
}
