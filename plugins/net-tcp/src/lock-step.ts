import { readFileSync, readlinkSync } from 'node:fs';
import { addrFromWords, FdType, formatInetAddr, readPstree, TCP_STATE, type DumpContext, type DumpTask, type RestoreContext } from '@amber/core';
import type { InetSkEntry } from './generated';
import { NetworkLock, type CommandRunner, type LockedConnection } from './network-lock';

/**
 * When the network lock is taken and removed, for the net-tcp plugin: taken in its dump (the tree
 * is frozen, no socket has been touched yet), removed after a failed dump or a dump with
 * --leave-running, kept after a complete dump (the tree is killed: its sockets' peers must not get
 * a reset until the restore), and removed once a restored tree runs or a restore has failed.
 */

const STATE_KEY = 'net-tcp:network-locks';

/** TCP states with no peer to hold off: CLOSE, LISTEN (TIME_WAIT has no socket fd). */
const UNCONNECTED = new Set([0x07, 0x0a]);

/** A /proc/net/tcp{,6} address: u32 words in host (little-endian) order. */
function procAddress(hex: string): string {
  const words = hex.match(/.{8}/g) ?? [];
  const bytes = Buffer.alloc(words.length * 4);
  words.forEach((w, i) => bytes.writeUInt32LE(parseInt(w, 16), i * 4));
  if (bytes.length === 4) return [...bytes].join('.');
  if (bytes.subarray(0, 10).every((b) => b === 0) && bytes.readUInt16BE(10) === 0xffff) return `::ffff:${[...bytes.subarray(12)].join('.')}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  return groups.join(':');
}

function procEndpoint(text: string): { address: string; port: number } {
  const [addr, port] = text.split(':');
  return { address: procAddress(addr), port: parseInt(port, 16) };
}

/**
 * The connected TCP sockets of /proc/PID/net/tcp{,6} text (the table of PID's network
 * namespace), by inode. Only the 4-tuple is taken from here; the socket itself is INET_DIAG's.
 */
export function parseProcNetTcp(text: string): Map<bigint, LockedConnection> {
  const out = new Map<bigint, LockedConnection>();
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const state = parseInt(f[3], 16);
    const inode = BigInt(f[9]);
    if (UNCONNECTED.has(state) || inode === 0n) continue;
    out.set(inode, { local: procEndpoint(f[1]), remote: procEndpoint(f[2]) });
  }
  return out;
}

interface NetnsConnections {
  nsPid: number;
  conns: LockedConnection[];
}

/** The tree's connected TCP sockets, grouped by the network namespace they live in. */
export function treeConnections(tasks: readonly DumpTask[]): NetnsConnections[] {
  const byNetns = new Map<string, NetnsConnections & { seen: Set<bigint>; table: Map<bigint, LockedConnection> }>();
  for (const task of tasks) {
    const sockets = task.fds.filter((fd) => fd.link.startsWith('socket:['));
    if (sockets.length === 0) continue;
    const netns = readlinkSync(`/proc/${task.pid}/ns/net`);
    let group = byNetns.get(netns);
    if (!group) {
      const table = new Map<bigint, LockedConnection>();
      for (const file of ['tcp', 'tcp6']) {
        let text = '';
        try {
          text = readFileSync(`/proc/${task.pid}/net/${file}`, 'utf8');
        } catch {
          continue; // no IPv6 in this kernel
        }
        for (const [ino, c] of parseProcNetTcp(text)) table.set(ino, c);
      }
      group = { nsPid: task.pid, conns: [], seen: new Set(), table };
      byNetns.set(netns, group);
    }
    for (const fd of sockets) {
      const c = group.table.get(fd.ino);
      if (c && !group.seen.has(fd.ino)) {
        group.seen.add(fd.ino);
        group.conns.push(c);
      }
    }
  }
  return [...byNetns.values()].filter((g) => g.conns.length > 0).map(({ nsPid, conns }) => ({ nsPid, conns }));
}

/** Takes the lock in every network namespace of the tree holding a connection. */
export function lockForDump(ctx: DumpContext, run?: CommandRunner): void {
  const { options, log } = ctx;
  // without --tcp-established a connection is refused, not dumped: nothing to hold
  if (options.preDump || !options.tcpEstablished || options.networkLock === 'skip') return;
  const locks = ctx.state(STATE_KEY, () => [] as NetworkLock[]);
  for (const { nsPid, conns } of treeConnections(ctx.tasks)) {
    const lock = new NetworkLock({ rootPid: options.pid, nsPid, method: options.networkLock, log, run });
    try {
      lock.lock(conns);
    } catch (e) {
      lock.close(); // a refused lock (another dump's is there) keeps no fd of its namespace
      throw e;
    }
    locks.push(lock);
    log.debug(`network lock: ${lock.method} ${lock.name} in the network namespace of pid ${nsPid}, ${conns.length} connection(s)`);
    ctx.count('locked connections', conns.length);
  }
}

/** After the dump: a failed one, or one that leaves the tree running, unlocks. */
export function afterDumpUnlock(ctx: DumpContext, succeeded: boolean): void {
  const locks = ctx.state(STATE_KEY, () => [] as NetworkLock[]);
  if (succeeded && !ctx.options.leaveRunning) {
    // kept until the restore: the tree is about to be killed, and its peers must not get a reset
    for (const lock of locks.splice(0)) lock.close();
    return;
  }
  const problems: string[] = [];
  for (const lock of locks.splice(0)) {
    try {
      lock.unlock();
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  if (problems.length) throw new Error(problems.join('; '));
}

const IPPROTO_TCP = 6;

/** The TCP connections of the images (files.img's inet entries), as their sockets will see them. */
export function imageConnections(ctx: RestoreContext): LockedConnection[] {
  const out: LockedConnection[] = [];
  for (const e of ctx.files.entries()) {
    const isk = (e as { isk?: InetSkEntry }).isk;
    if (e.type !== FdType.INETSK || !isk || isk.proto !== IPPROTO_TCP) continue;
    if (isk.state === TCP_STATE.LISTEN || isk.state === TCP_STATE.CLOSE || isk.dstPort === 0) continue;
    out.push({
      local: { address: formatInetAddr(isk.family, addrFromWords(isk.family, isk.srcAddr)), port: isk.srcPort },
      remote: { address: formatInetAddr(isk.family, addrFromWords(isk.family, isk.dstAddr)), port: isk.dstPort },
    });
  }
  return out;
}

/**
 * Before any socket is made (the end of the shared phase): the connections of the images are
 * locked where the tree will live — amber's own network namespace. The dump's lock is usually
 * still there and is taken over; a restore elsewhere (or after a failed one) makes it anew.
 */
export function lockForRestore(ctx: RestoreContext, run?: CommandRunner): void {
  const method = ctx.options.networkLock;
  if (!ctx.options.tcpEstablished || method === 'skip') return;
  const conns = imageConnections(ctx);
  if (conns.length === 0) return;
  const rootPid = readPstree(ctx.store)[0].pid;
  const lock = new NetworkLock({ rootPid, nsPid: process.pid, method, log: ctx.log, run });
  lock.lock(conns, true);
  lock.close();
  ctx.log.debug(`network lock: ${lock.method} ${lock.name} in amber's network namespace, ${conns.length} connection(s)`);
}

/** A restore holds connections when its files.img has an inet socket. */
function hasInetSockets(ctx: RestoreContext): boolean {
  return ctx.files.entries().some((e) => e.type === FdType.INETSK);
}

/**
 * Once the restored sockets are live (out of repair mode, in the resume phase, just before the
 * tree runs), or after a failed restore: the lock its dump left goes. Not later: a reply the
 * resumed task sends into a locked connection is dropped, and its socket, with no RTT measured
 * yet, retransmits it only after a second or more. The restored tree lives in amber's network
 * namespace (tasks are made there), which is where a failed restore looks too. Once per restore.
 */
export function restoreUnlock(ctx: RestoreContext, succeeded: boolean, run?: CommandRunner): void {
  const done = ctx.state('net-tcp:unlocked', () => ({ yes: false }));
  if (done.yes || !hasInetSockets(ctx)) return;
  done.yes = true;
  const rootPid = readPstree(ctx.store)[0].pid;
  const nsPid = succeeded ? rootPid : process.pid;
  // whichever tool made it (the dump may have been told another method, or skip here): the
  // name is amber's own, and a lock nobody removes holds the connections for good
  for (const m of ['nftables', 'iptables'] as const) new NetworkLock({ rootPid, nsPid, method: m, log: ctx.log, run }).unlock();
  ctx.log.debug(`network lock amber-${rootPid} removed`);
}
