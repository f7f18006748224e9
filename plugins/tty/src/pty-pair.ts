import { fstatSync } from 'node:fs';
import {
  AmberError, O, TERMIOS_SIZE, TIOC, close, encodeTermios, fchmod, fchown, ioctlBuf, ioctlSetInt, setWinsize, takeFd,
  type RestoreContext, type RestoreTask,
} from '@amber/core';
import { TtyType, TtyImageError, type TtyDataEntry, type TtyInfoEntry } from './images';
import { PTMX_RDEV } from './devices';
import { refillPair } from './queue';
import { ioctlGetIntIn, ioctlSetIntIn } from './remote-ioctl';
import { termiosOf, winsizeOf } from './termios';

/** The pty index the dump had is held by another terminal on this machine. */
export class PtyIndexTakenError extends AmberError {
  constructor(readonly pid: number, readonly index: number) {
    super(`pid ${pid}: pty index ${index} (/dev/pts/${index}) is in use on this machine, and a pty is restored at its dumped index ` +
      `(programs remember their /dev/pts name): close the terminal that holds it and restore again; nothing was restored`);
  }
}

/** A slave owner or mode the restored task could not have set itself. */
export class PtyOwnerError extends AmberError {
  constructor(readonly pid: number, readonly index: number, what: string) {
    super(`pid ${pid}: /dev/pts/${index} was ${what}, which the task's credentials could not have made; nothing was restored`);
  }
}

export interface TtyRestoreState {
  infos: Map<number, TtyInfoEntry>;
  /** queued bytes by the tty-info id of the end that reads them */
  data: Map<number, TtyDataEntry>;
  /** pty indexes made so far */
  made: Set<number>;
  /** where each end's description ended up (post-open): for what must wait until every fd is open */
  placed: Map<number, { pid: number; fd: number }>;
  /** sessions whose controlling terminal is set */
  cttyDone: Set<number>;
}

export function ttyRestoreState(ctx: RestoreContext): TtyRestoreState {
  return ctx.state<TtyRestoreState>('tty:restore', () => {
    const infos = new Map<number, TtyInfoEntry>();
    const data = new Map<number, TtyDataEntry>();
    if (ctx.store.has('tty-info')) for (const e of ctx.store.read<TtyInfoEntry>('tty-info', 'tty-info').entries) infos.set(e.id, e);
    if (ctx.store.has('tty-data')) for (const e of ctx.store.read<TtyDataEntry>('tty-data', 'tty-data').entries) data.set(e.ttyId, e);
    return { infos, data, made: new Set(), placed: new Map(), cttyDone: new Set() };
  });
}

export const isMasterInfo = (info: TtyInfoEntry) => info.type === TtyType.PTY && info.rdev === PTMX_RDEV;

/** Both ends' tty-info of pty index. */
export function pairInfos(state: TtyRestoreState, index: number): { master?: TtyInfoEntry; slave?: TtyInfoEntry } {
  const out: { master?: TtyInfoEntry; slave?: TtyInfoEntry } = {};
  for (const info of state.infos.values()) {
    if (info.type !== TtyType.PTY || info.pty?.index !== index) continue;
    if (isMasterInfo(info)) out.master = info;
    else out.slave = info;
  }
  return out;
}

/**
 * Opens /dev/ptmx in the task until the kernel hands out `index`: it gives the lowest free index,
 * so the ones below that are free are taken meanwhile and let go after. An index above the wanted
 * one means the wanted one is in use.
 */
function openPtmxAt(ctx: RestoreContext, task: RestoreTask, index: number): number {
  const held: number[] = [];
  try {
    for (;;) {
      const fd = ctx.fds.open(task, '/dev/ptmx', O.RDWR | O.NOCTTY | O.CLOEXEC);
      const got = ioctlGetIntIn(task, fd, TIOC.TIOCGPTN, 'ioctl(TIOCGPTN)');
      if (got === index) return fd;
      held.push(fd);
      if (got > index || held.length > index + 16) throw new PtyIndexTakenError(task.pid, index);
    }
  } finally {
    for (const fd of held) task.remote.sys.close(fd);
  }
}

/** The slave owner and mode the dump had, set only if the new slave differs and the task could have done it. */
function restoreOwner(task: RestoreTask, slave: number, info: TtyInfoEntry, index: number): void {
  if (info.uid === undefined || info.gid === undefined || info.mode === undefined) return;
  const st = fstatSync(slave);
  const creds = task.creds;
  const root = !creds || creds.euid === 0;
  if (st.uid !== info.uid || st.gid !== info.gid) {
    const mayChown = root || (info.uid === creds.euid && (info.gid === creds.egid || creds.groups.includes(info.gid) || info.gid === st.gid));
    if (!mayChown) throw new PtyOwnerError(task.pid, index, `owned by ${info.uid}:${info.gid}`);
    fchown(slave, info.uid, info.gid, `/dev/pts/${index} of pid ${task.pid}`);
  }
  if ((st.mode & 0o7777) !== info.mode) {
    if (!root && info.uid !== creds.euid) throw new PtyOwnerError(task.pid, index, `mode 0${info.mode.toString(8)}`);
    fchmod(slave, info.mode, `/dev/pts/${index} of pid ${task.pid}`);
  }
}

/**
 * Makes pty pair `index` in the task, as the dump had it: termios, window size, locked termios,
 * the slave's owner and mode, the bytes queued both ways, then packet mode (set last: earlier,
 * the termios changes would queue status bytes). Lock and exclusive mode wait until every fd is
 * open (lateSetup). Returns the master's fd in the task.
 */
export function makePair(ctx: RestoreContext, task: RestoreTask, index: number): number {
  const state = ttyRestoreState(ctx);
  const { master: mInfo, slave: sInfo } = pairInfos(state, index);
  const info = mInfo ?? sInfo;
  if (!info?.termios) throw new TtyImageError(`pty ${index}: tty-info.img has no termios for it (a damaged image set)`);
  const master = openPtmxAt(ctx, task, index);
  ioctlSetIntIn(task, master, TIOC.TIOCSPTLCK, 0, 'ioctl(TIOCSPTLCK)');
  // non-blocking: a refill that finds no room fails rather than hang (it is a description of its own)
  const slave = ctx.fds.open(task, `/dev/pts/${index}`, O.RDWR | O.NOCTTY | O.CLOEXEC | O.NONBLOCK);
  try {
    const m = takeFd(task.pid, master);
    const s = takeFd(task.pid, slave);
    try {
      const termios = termiosOf(info.termios);
      const toMaster = mInfo && state.data.get(mInfo.id);
      const toSlave = sInfo && state.data.get(sInfo.id);
      refillPair(index, m, s, termios, toMaster, toSlave && { data: toSlave.data, linesBytes: toSlave.linesBytes, eofAt: toSlave.eofAt });
      if (info.winsize) setWinsize(m, winsizeOf(info.winsize));
      if (info.termiosLocked) ioctlBuf(m, TIOC.TIOCSLCKTRMIOS, encodeTermios(termiosOf(info.termiosLocked), TERMIOS_SIZE), 'ioctl(TIOCSLCKTRMIOS)');
      restoreOwner(task, s, info, index);
      if (mInfo?.packetMode) ioctlSetInt(m, TIOC.TIOCPKT, 1, 'ioctl(TIOCPKT)');
    } finally {
      close(m);
      close(s);
    }
  } finally {
    task.remote.sys.close(slave);
  }
  state.made.add(index);
  return master;
}
