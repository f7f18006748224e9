import { closeSync, openSync, statSync } from 'node:fs';
import {
  AmberError, O, POLL, TERMIOS_SIZE, TIOC, close, decodeTermios, getTermios, getWinsize, ioctlBuf, ioctlGetInt, ioctlSetInt, pollNow, takeFd,
  type DumpContext, type FdResource, type Termios,
} from '@amber/core';
import { classify, controllingTerminalOf, CTTY_RDEV, PTMX_RDEV, slaveIndexOf, slaveRdev, UnsupportedTerminalError } from './devices';
import { TtyType, type TtyDataEntry, type TtyInfoEntry } from './images';
import { dumpOutsideTerminal } from './outside-terminal';
import { LDISC_HOLDS, readMasterQueue, readSlaveQueue, refillPair, TooMuchInputError, type Queued } from './queue';
import { termiosEntry, winsizeEntry } from './termios';

/** What the dump found, for the kind's dumpDescription and for afterDump. */
export interface TtyDumpState {
  /** tty-info id of each terminal end: `master:N`, `slave:N`, `ctty:RDEV` (/dev/tty reaching RDEV), `outside:RDEV` */
  infoIds: Map<string, number>;
  /** the key of each /dev/tty fd (`PID:FD`): the terminal it reaches */
  cttyKeys: Map<string, string>;
  infos: TtyInfoEntry[];
  /** queues read out of each pair, to put back if the tree keeps running */
  drained: { index: number; master: FdResource; slave?: FdResource; termios: Termios; toMaster: Queued; toSlave: Queued }[];
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

/** A pty master whose slave no task holds and none ever opened: opening it to read its queue would change it. */
export class SlaveNeverOpenedError extends AmberError {
  constructor(readonly pid: number, readonly fd: number, readonly index: number) {
    super(`fd ${fd} of pid ${pid} is the master of /dev/pts/${index}, whose slave was never opened: amber can neither read its queue nor restore that state without opening it; dump again once it is in use; nothing was changed and the process keeps running`);
  }
}

/** A foreground group no task of the tree is in: the restored terminal could not be given to it. */
export class ForegroundOutsideError extends AmberError {
  constructor(readonly pid: number, readonly index: number, readonly pgrp: number) {
    super(`pid ${pid} leads a session whose terminal /dev/pts/${index} has process group ${pgrp} in the foreground, and no task of the tree is in that group; nothing was changed and the process keeps running`);
  }
}

/** A terminal only a session's control (no fd) ties to the tree, from a master amber does not dump. */
export class OutsideControllingTerminalError extends AmberError {
  constructor(readonly pid: number, what: string) {
    super(`pid ${pid} ${what}; nothing was changed and the process keeps running`);
  }
}

const deviceName = (rdev: number) => {
  const index = slaveIndexOf(rdev);
  return index === undefined ? `device ${rdev >> 8}:${rdev & 0xff}` : `/dev/pts/${index}`;
};

/**
 * With amber's fd of the pair's slave, runs fn: a copy of the tree's slave fd, or, when no task
 * holds one (its last holder closed it), the slave opened again for the purpose (the lock lifted
 * meanwhile: a refused open would put the open slave in I/O error). Closing it again leaves the
 * master as it was, its other end closed.
 */
function withSlave<T>(master: FdResource, slave: FdResource | undefined, index: number, fn: (copy: number) => T, fresh = false): T {
  if (slave && !fresh) return withCopy(slave, fn);
  return withCopy(master, (m) => {
    const locked = flag(m, TIOC.TIOCGPTLCK, 'ioctl(TIOCGPTLCK)');
    if (locked) ioctlSetInt(m, TIOC.TIOCSPTLCK, 0, 'ioctl(TIOCSPTLCK)');
    let fd: number;
    try {
      fd = openSync(`/proc/${master.pid}/root/dev/pts/${index}`, O.RDWR | O.NOCTTY | O.CLOEXEC | (fresh ? O.NONBLOCK : 0));
    } finally {
      if (locked) ioctlSetInt(m, TIOC.TIOCSPTLCK, 1, 'ioctl(TIOCSPTLCK)');
    }
    try {
      return fn(fd);
    } finally {
      closeSync(fd);
    }
  });
}

/**
 * The terminals of the tree, once each: tty-info.img (both ends of every pty pair, /dev/tty fds,
 * outside terminals), tty-data.img (the bytes queued in either direction, read out: afterDump puts
 * them back if the tree goes on running). Runs before the fd table is dumped; every refusal comes
 * before any queue is read (but too much typed input in canonical mode, found reading it: afterDump
 * puts back what was read).
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
  const groups = new Set(ctx.tasks.map((t) => t.stat.pgrp));
  for (const task of ctx.tasks) {
    const c = controllingTerminalOf(task.pid);
    if (c.ttyNr && (task.pid === c.session || !sessions.has(c.ttyNr))) sessions.set(c.ttyNr, { sid: c.session, pgrp: c.tpgid > 0 ? c.tpgid : 0 });
  }
  for (const task of ctx.tasks) {
    const c = controllingTerminalOf(task.pid);
    const index = slaveIndexOf(c.ttyNr);
    if (task.pid === c.session && c.ttyNr && (index === undefined || !masters.has(index))) {
      throw new OutsideControllingTerminalError(task.pid, `leads a session whose controlling terminal ${deviceName(c.ttyNr)} has its master outside the dumped tree: amber cannot make it that session's terminal again (dump the process holding the master too)`);
    }
  }
  for (const [index, master] of masters) {
    const session = sessions.get(slaveRdev(index));
    if (session?.pgrp && ctx.tasks.some((t) => t.pid === session.sid) && !groups.has(session.pgrp)) throw new ForegroundOutsideError(session.sid, index, session.pgrp);
    if (!slaves.has(index) && !(withCopy(master, (m) => pollNow(m, POLL.HUP)) & POLL.HUP)) throw new SlaveNeverOpenedError(master.pid, master.fd, index);
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
    const session = sessions.get(target);
    if (masters.has(index) && !(session && ctx.tasks.some((t) => t.pid === session.sid))) {
      throw new OutsideControllingTerminalError(fd.pid, `holds /dev/tty (fd ${fd.fd}) of /dev/pts/${index}, which no session of the dumped tree has as its controlling terminal any more: amber could not open it again`);
    }
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
    // (a slave no task holds gets an entry too: its queue is kept under it)
    const slaveExclusive = withSlave(master, slave, index, (s) => flag(s, TIOC.TIOCGEXCL, 'ioctl(TIOCGEXCL)'));
    const slaveId = add(slave ? `slave:${index}` : `closed-slave:${index}`, { ...info, rdev: slaveRdev(index), exclusive: slaveExclusive, packetMode: false });
    // every property is read before any byte: a failure leaves the queues as they were
    const drained: TtyDumpState['drained'][number] = { index, master, slave, termios: common.termios, toMaster: { data: Buffer.alloc(0), eofAt: [] }, toSlave: { data: Buffer.alloc(0), eofAt: [] } };
    state.drained.push(drained);
    drained.toMaster = withCopy(master, (m) => readMasterQueue(m));
    drained.toSlave = withSlave(master, slave, index, (s) => readSlaveQueue(s, common.termios, index));
    if (drained.toSlave.data.length > LDISC_HOLDS) throw new TooMuchInputError(index, `${drained.toSlave.data.length}`);
    if (drained.toMaster.data.length) data.push({ ttyId: masterId, data: drained.toMaster.data, eofAt: [] });
    if (drained.toSlave.data.length) data.push({ ttyId: slaveId, ...drained.toSlave });
    ctx.count('tty queued bytes', drained.toMaster.data.length + drained.toSlave.data.length);
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
    if (!d.toMaster.data.length && !d.toSlave.data.length) continue;
    // through a slave of amber's own, opened non-blocking: the task's description is left alone
    withCopy(d.master, (m) => withSlave(d.master, d.slave, d.index, (s) => {
      const packet = ioctlGetInt(m, TIOC.TIOCGPKT, 'ioctl(TIOCGPKT)');
      if (packet) ioctlSetInt(m, TIOC.TIOCPKT, 0, 'ioctl(TIOCPKT)');
      try {
        refillPair(d.index, m, s, d.termios, d.toMaster, d.toSlave);
      } finally {
        if (packet) ioctlSetInt(m, TIOC.TIOCPKT, 1, 'ioctl(TIOCPKT)');
      }
    }, true));
  }
}
