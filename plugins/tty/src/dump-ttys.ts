import { readFileSync, statSync } from 'node:fs';
import {
  AmberError, TERMIOS_SIZE, TIOC, close, decodeTermios, getTermios, getWinsize, ioctlBuf, ioctlGetInt, ioctlSetInt, takeFd,
  type DumpContext, type FdResource, type Termios,
} from '@amber/core';
import { classify, CTTY_RDEV, PTMX_RDEV, slaveIndexOf, slaveRdev, UnsupportedTerminalError } from './devices';
import { TtyType, type TtyDataEntry, type TtyInfoEntry } from './images';
import { dumpOutsideTerminal } from './outside-terminal';
import { readMasterQueue, readSlaveQueue, refillPair, type Queued } from './queue';
import { termiosEntry, winsizeEntry } from './termios';

/** What the dump found, for the kind's dumpDescription and for afterDump. */
export interface TtyDumpState {
  /** tty-info id of each terminal end: `master:N`, `slave:N`, `ctty:RDEV` (/dev/tty reaching RDEV), `outside:RDEV` */
  infoIds: Map<string, number>;
  /** the key of each /dev/tty fd (`PID:FD`): the terminal it reaches */
  cttyKeys: Map<string, string>;
  infos: TtyInfoEntry[];
  /** queues read out of each pair, to put back if the tree keeps running */
  drained: { index: number; master: FdResource; slave?: FdResource; termios: Termios; toMaster: Queued; toSlave?: Queued }[];
}

export const ttyDumpState = (ctx: DumpContext) => ctx.state<TtyDumpState>('tty:dump', () => ({ infoIds: new Map(), cttyKeys: new Map(), infos: [], drained: [] }));

/** The key of the terminal end an fd is, as TtyDumpState.infoIds has it. */
export function endKey(state: TtyDumpState, fd: FdResource): string {
  const end = classify(fd);
  if (end.what === 'master') return `master:${masterIndexOf(fd)}`;
  if (end.what === 'slave') return state.infoIds.has(`slave:${end.index}`) ? `slave:${end.index}` : `outside:${end.rdev}`;
  if (end.what === 'ctty') return state.cttyKeys.get(`${fd.pid}:${fd.fd}`) ?? '?';
  throw new UnsupportedTerminalError(fd.pid, fd.fd, fd.link, end.name);
}

export function masterIndexOf(fd: FdResource): number {
  const index = fd.info.extra.get('tty-index');
  if (index === undefined) throw new AmberError(`fd ${fd.fd} of pid ${fd.pid} is ${fd.link}, whose fdinfo has no tty-index`);
  return Number(index);
}

/** /proc/PID/stat's tty_nr and tpgid: the controlling terminal and its foreground group. */
function controllingTerminalOf(pid: number): { ttyNr: number; tpgid: number; session: number } {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { session: Number(f[3]), ttyNr: Number(f[4]) >>> 0, tpgid: Number(f[5]) };
}

/** With an amber-held copy of fd (pidfd_getfd: the same open file), runs fn. */
function withCopy<T>(fd: FdResource, fn: (copy: number) => T): T {
  const copy = takeFd(fd.pid, fd.fd);
  try {
    return fn(copy);
  } finally {
    close(copy);
  }
}

const flag = (copy: number, request: number, what: string) => ioctlGetInt(copy, request, what) !== 0;

/**
 * The terminals of the tree, once each: tty-info.img (both ends of every pty pair, /dev/tty fds,
 * outside terminals), tty-data.img (the bytes queued in either direction, read out: afterDump puts
 * them back if the tree goes on running). Runs before the fd table is dumped; every refusal comes
 * before any queue is read.
 */
export function dumpTerminals(ctx: DumpContext, claims: (fd: FdResource) => boolean): void {
  const state = ttyDumpState(ctx);
  const masters = new Map<number, FdResource>();
  const slaves = new Map<number, FdResource>();
  const cttys: FdResource[] = [];
  for (const task of ctx.tasks) {
    for (const fd of task.fds) {
      if (!claims(fd)) continue;
      const end = classify(fd);
      if (end.what === 'unsupported') throw new UnsupportedTerminalError(fd.pid, fd.fd, fd.link, end.name);
      if (end.what === 'master') masters.set(masterIndexOf(fd), masters.get(masterIndexOf(fd)) ?? fd);
      if (end.what === 'slave') slaves.set(end.index, slaves.get(end.index) ?? fd);
      if (end.what === 'ctty') cttys.push(fd);
    }
  }
  const sessions = new Map<number, { sid: number; pgrp: number }>();
  for (const task of ctx.tasks) {
    const c = controllingTerminalOf(task.pid);
    if (c.ttyNr && (task.pid === c.session || !sessions.has(c.ttyNr))) sessions.set(c.ttyNr, { sid: c.session, pgrp: c.tpgid > 0 ? c.tpgid : 0 });
  }
  const add = (key: string, info: Omit<TtyInfoEntry, 'id'>) => {
    const id = state.infos.length + 1;
    state.infos.push({ id, ...info });
    state.infoIds.set(key, id);
    return id;
  };
  // refusals first: a slave whose master is elsewhere, a /dev/tty that is no terminal of the tree
  for (const [index, fd] of slaves) {
    if (!masters.has(index)) add(`outside:${slaveRdev(index)}`, dumpOutsideTerminal(ctx, fd, index));
  }
  const cttyTargets = cttys.map((fd) => ({ fd, target: withCopy(fd, (c) => ioctlGetInt(c, TIOC.TIOCGDEV, 'ioctl(TIOCGDEV)')) >>> 0 }));
  for (const { fd, target } of cttyTargets) {
    const index = slaveIndexOf(target);
    if (index === undefined) throw new UnsupportedTerminalError(fd.pid, fd.fd, fd.link, `which reaches device ${target >> 8}:${target & 0xff}, no pseudo-terminal`);
    if (!masters.has(index) && !state.infoIds.has(`outside:${target}`)) add(`outside:${target}`, dumpOutsideTerminal(ctx, fd, index));
  }

  const data: TtyDataEntry[] = [];
  for (const [index, master] of masters) {
    const slave = slaves.get(index);
    const session = sessions.get(slaveRdev(index)) ?? { sid: 0, pgrp: 0 };
    const owner = slave ?? statSync(`/proc/${master.pid}/root/dev/pts/${index}`, { bigint: false });
    const common = withCopy(master, (m) => {
      const termios = getTermios(m);
      const locked = Buffer.alloc(TERMIOS_SIZE);
      ioctlBuf(m, TIOC.TIOCGLCKTRMIOS, locked, 'ioctl(TIOCGLCKTRMIOS)');
      return {
        termios, locked: locked.some((b) => b !== 0) ? termiosEntry(decodeTermios(locked)) : undefined,
        winsize: getWinsize(m), lockedPty: flag(m, TIOC.TIOCGPTLCK, 'ioctl(TIOCGPTLCK)'),
        packet: flag(m, TIOC.TIOCGPKT, 'ioctl(TIOCGPKT)'), exclusive: flag(m, TIOC.TIOCGEXCL, 'ioctl(TIOCGEXCL)'),
      };
    });
    const info = {
      type: TtyType.PTY, locked: common.lockedPty, sid: session.sid, pgrp: session.pgrp, termios: termiosEntry(common.termios),
      termiosLocked: common.locked, winsize: winsizeEntry(common.winsize), pty: { index },
      uid: Number(owner.uid), gid: Number(owner.gid), mode: Number(owner.mode) & 0o7777,
    };
    const masterId = add(`master:${index}`, { ...info, rdev: PTMX_RDEV, exclusive: common.exclusive, packetMode: common.packet });
    const slaveId = slave && add(`slave:${index}`, {
      ...info, rdev: slaveRdev(index), exclusive: withCopy(slave, (s) => flag(s, TIOC.TIOCGEXCL, 'ioctl(TIOCGEXCL)')), packetMode: false,
    });
    // every property is read before any byte: a failure leaves the queues as they were
    const toMaster = withCopy(master, (m) => readMasterQueue(m));
    const drained: TtyDumpState['drained'][number] = { index, master, slave, termios: common.termios, toMaster };
    state.drained.push(drained);
    if (slave) drained.toSlave = withCopy(slave, (s) => readSlaveQueue(s, common.termios));
    if (toMaster.data.length) data.push({ ttyId: masterId, data: toMaster.data, eofAt: [] });
    if (drained.toSlave?.data.length && slaveId) data.push({ ttyId: slaveId, ...drained.toSlave });
    ctx.count('tty queued bytes', toMaster.data.length + (drained.toSlave?.data.length ?? 0));
  }
  for (const { fd, target } of cttyTargets) {
    state.cttyKeys.set(`${fd.pid}:${fd.fd}`, `ctty:${target}`);
    if (state.infoIds.has(`ctty:${target}`)) continue;
    const session = sessions.get(target) ?? { sid: 0, pgrp: 0 };
    add(`ctty:${target}`, { type: TtyType.CTTY, locked: false, exclusive: false, packetMode: false, sid: session.sid, pgrp: session.pgrp, rdev: CTTY_RDEV, cttyRdev: target });
  }
  if (state.infos.length) ctx.store.write('tty-info', 'tty-info', state.infos);
  if (data.length) ctx.store.write('tty-data', 'tty-data', data);
  ctx.count('ttys', state.infos.length);
}

/** The queues read out at dump go back where they were: the tree keeps running (--leave-running, or a failed dump). */
export function putQueuesBack(ctx: DumpContext): void {
  for (const d of ttyDumpState(ctx).drained.splice(0)) {
    if (!d.slave) {
      if (d.toMaster.data.length) ctx.log.warn(`pty ${d.index}: ${d.toMaster.data.length} bytes the master had to read are lost: no slave fd in the tree to write them back through`);
      continue;
    }
    withCopy(d.master, (m) => withCopy(d.slave!, (s) => {
      const packet = ioctlGetInt(m, TIOC.TIOCGPKT, 'ioctl(TIOCGPKT)');
      if (packet) ioctlSetInt(m, TIOC.TIOCPKT, 0, 'ioctl(TIOCPKT)');
      try {
        refillPair(d.index, m, s, d.termios, d.toMaster, d.toSlave);
      } finally {
        if (packet) ioctlSetInt(m, TIOC.TIOCPKT, 1, 'ioctl(TIOCPKT)');
      }
    }));
  }
}
