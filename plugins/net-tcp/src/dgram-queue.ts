import {
  AF, AmberError, KernelError, SO, SOCK, SOL_SOCKET, bindRaw, close, formatEndpoint, getsockoptBytes, getsocknameInet, parseSockaddrInet, peekDatagrams,
  recordSocketQueue, sendDatagramOrThrow, setsockoptInt, sleepSync, sockaddrInet, socket, socketQueuesOf,
  type DumpContext, type InetEndpoint, type PeekedDatagram, type RestoreContext,
} from '@amber/core';
import type { DgramSkEntry, InetSkEntry } from './generated';

// Datagrams queued to read on a UDP socket, kept: peeked at dump (nothing consumed), written to
// sk-queues.img with their sender's address, and sent again at restore, each from a socket of
// amber's bound to that sender's address and port (IP_TRANSPARENT lets it be an address of
// another host), so the program reads the same bytes, with the same boundaries, from the same
// sender. CRIU drops them.

const SOL_IP = 0;
const SOL_IPV6 = 41;
const IP_TRANSPARENT = 19;
const IPV6_TRANSPARENT = 75;

export class DgramQueueError extends AmberError {}

const SO_MEMINFO = 55;
/** SK_MEMINFO_RMEM_ALLOC (0) and SK_MEMINFO_DROPS (8) of amber's fd. */
function meminfo(fd: number): { rmemAlloc: number; drops: number } {
  const m = getsockoptBytes(fd, SOL_SOCKET, SO_MEMINFO, 9 * 4, 'getsockopt(SO_MEMINFO)');
  return { rmemAlloc: m.readUInt32LE(0), drops: m.length >= 36 ? m.readUInt32LE(32) : 0 };
}

const describeFrom = (from: Buffer) => (from.length >= 8 ? formatEndpoint(parseSockaddrInet(from)) : 'an unnamed sender');

/** Peeks fd's queue (amber's copy of the socket) and records it for entry; returns what it kept. */
export function dumpDatagrams(ctx: DumpContext, fd: number, entry: InetSkEntry, dgram: DgramSkEntry): PeekedDatagram[] {
  const queued = peekDatagrams(fd);
  recordSocketQueue(ctx, queued.map((d) => ({ entry: { idFor: entry.id, length: d.data.length, addr: d.from, scm: [] }, data: d.data })));
  if (queued.length) {
    dgram.queued = queued.length;
    dgram.queuedBytes = queued.reduce((n, d) => n + d.data.length, 0);
    const empty = queued.filter((d) => d.data.length === 0).length;
    if (empty) dgram.queuedEmpty = empty;
    ctx.count('datagrams queued', queued.length);
  }
  return queued;
}

/** Where datagrams for the restored socket go: its own address, or loopback for a wildcard one. */
function destinationOf(fd: number, from: InetEndpoint | undefined): Buffer {
  const here = getsocknameInet(fd);
  if (here.addr.every((b) => b === 0)) {
    const mapped = from?.family === AF.INET6 && from.addr.subarray(0, 12).equals(Buffer.from('00000000000000000000ffff', 'hex'));
    here.addr = here.family === AF.INET ? Buffer.from([127, 0, 0, 1])
      : mapped ? Buffer.from('00000000000000000000ffff7f000001', 'hex') : Buffer.from('00000000000000000000000000000001', 'hex');
  }
  return sockaddrInet(here);
}

/** A socket of amber's bound to the sender's address (undefined: that address cannot be had here). */
function senderFor(from: Buffer, protocol: number): number | undefined {
  if (from.length < 8) return undefined;
  const family = from.readUInt16LE(0);
  const fd = socket(family, SOCK.DGRAM | SOCK.CLOEXEC, protocol);
  try {
    setsockoptInt(fd, SOL_SOCKET, 2 /* SO_REUSEADDR */, 1);
    setsockoptInt(fd, family === AF.INET6 ? SOL_IPV6 : SOL_IP, family === AF.INET6 ? IPV6_TRANSPARENT : IP_TRANSPARENT, 1);
    if (bindRaw(fd, from) === 0) return fd;
  } catch (e) {
    if (!(e instanceof KernelError)) throw e;
  }
  close(fd);
  return undefined;
}

/**
 * Refills the restored socket fd (amber's, bound and connected as dumped) with what entry had
 * queued, then checks the queue holds exactly that. A sender whose address cannot be bound here
 * sends from a fresh port of this namespace: the data and boundaries stay, the sender changes
 * (said in the log).
 */
export function refillDatagrams(ctx: RestoreContext, fd: number, entry: InetSkEntry, where: string): void {
  const records = socketQueuesOf(ctx).get(entry.id) ?? [];
  if (!records.length) return;
  const dropsBefore = meminfo(fd).drops;
  const senders = new Map<string, number | undefined>();
  const self = getsocknameInet(fd);
  // a datagram the socket sent itself goes out of it again: a second socket on its address would take it
  const isSelf = (from: Buffer) => {
    if (from.length < 8) return false;
    const f = parseSockaddrInet(from);
    return f.family === self.family && f.port === self.port && f.addr.equals(self.addr);
  };
  try {
    for (const { entry: r, data } of records) {
      const from = r.addr ?? Buffer.alloc(0);
      const key = from.toString('hex');
      if (!senders.has(key)) senders.set(key, isSelf(from) ? -1 : senderFor(from, entry.proto));
      let sender = senders.get(key);
      if (sender === -1) sender = fd;
      if (sender === undefined) {
        ctx.log.warn(`${where}: a datagram from ${describeFrom(from)} is queued again from another address (that one cannot be bound here)`);
        sender = socket(entry.family, SOCK.DGRAM | SOCK.CLOEXEC, entry.proto);
        senders.set(key, sender);
      }
      const to = destinationOf(fd, from.length >= 8 ? parseSockaddrInet(from) : undefined);
      sendDatagramOrThrow(sender, data, to, `${where}: queueing a datagram from ${describeFrom(from)} again`);
    }
  } finally {
    for (const s of senders.values()) if (s !== undefined && s !== -1) close(s);
  }
  // the kernel drops what does not fit (and says so only in the socket's drop count), and loopback
  // delivers in softirq context, normally before sendto returns. Not peeked to check: a peek with
  // SO_PEEK_OFF marks an empty datagram, and later peeks (the program's too) skip it.
  const want = records.reduce((n, r) => n + r.data.length, 0);
  let mem = meminfo(fd);
  for (let i = 0; i < 100 && mem.rmemAlloc === 0; i++, mem = meminfo(fd)) sleepSync(10);
  if (mem.drops !== dropsBefore || mem.rmemAlloc === 0) {
    throw new DgramQueueError(`${where}: its ${records.length} queued datagram(s) (${want} bytes) could not all be queued again (${mem.drops - dropsBefore} dropped); the restore stops`);
  }
  if (entry.dgram?.peekOff !== undefined) setsockoptInt(fd, SOL_SOCKET, SO.PEEK_OFF, entry.dgram.peekOff);
}
