import {
  AmberError, KernelError, O, TIOC, close, fetchFd, ioctlSetInt, ioctlRaw, takeFd,
  type CompareContext, type Difference, type ImageStore, type RestoreContext, type RestoreTask,
} from '@amber/core';
import { controllingTerminalOf, slaveIndexOf, slaveRdev } from './devices';
import { TtyType, type TtyInfoEntry } from './images';
import { openOutsideTerminal } from './outside-terminal';
import { isMasterInfo, pairInfos, ttyRestoreState } from './pty-pair';
import { ioctlSetIntIn, ioctlValueIn } from './remote-ioctl';

/** A controlling terminal or foreground group the restore could not give back. */
export class ControllingTerminalError extends AmberError {
  constructor(readonly pid: number, readonly index: number, what: string) {
    super(`pid ${pid}: /dev/pts/${index}: ${what}`);
  }
}

/**
 * Makes pty `index` the controlling terminal of its session (TIOCSCTTY in the session leader,
 * through a slave opened there for the purpose), once. The foreground group comes later
 * (foregroundGroups), when every terminal is back.
 */
function takeControllingTerminal(ctx: RestoreContext, info: TtyInfoEntry): RestoreTask | undefined {
  const state = ttyRestoreState(ctx);
  const leader = ctx.tasks.find((t) => t.pid === info.sid);
  if (!leader) return undefined; // a session led from outside: a shell job's, which the core gives amber's terminal
  if (state.cttyDone.has(info.sid)) return leader;
  const index = info.pty!.index;
  if (!state.made.has(index)) throw new ControllingTerminalError(leader.pid, index, 'the controlling terminal of this session is held by no fd of the tree, so it cannot be made again');
  const fd = ctx.fds.open(leader, `/dev/pts/${index}`, O.RDWR | O.NOCTTY | O.CLOEXEC);
  try {
    ioctlValueIn(leader, fd, TIOC.TIOCSCTTY, 0, 'ioctl(TIOCSCTTY)');
  } finally {
    leader.remote.sys.close(fd);
  }
  state.cttyDone.add(info.sid);
  return leader;
}

/**
 * An fd of /dev/tty reaches the controlling terminal its opener had: it is opened in the leader
 * of the session that terminal controls (made so first) and handed to the task.
 */
export function openCttyFile(ctx: RestoreContext, task: RestoreTask, info: TtyInfoEntry): number {
  const state = ttyRestoreState(ctx);
  const target = info.cttyRdev ?? 0;
  const outside = [...state.infos.values()].find((i) => i.type === TtyType.EXT_TTY && i.rdev === target);
  if (outside) return openOutsideTerminal(ctx, task, outside, true);
  const index = slaveIndexOf(target);
  const pair = index === undefined ? {} : pairInfos(state, index);
  const terminal = pair.master ?? pair.slave;
  if (index === undefined || !terminal?.sid) throw new ControllingTerminalError(task.pid, index ?? -1, 'a /dev/tty fd of a terminal that controls no session of the tree');
  const leader = takeControllingTerminal(ctx, terminal);
  if (!leader) throw new ControllingTerminalError(task.pid, index, `a /dev/tty fd of a terminal whose session (${terminal.sid}) is led from outside the tree`);
  const fd = ctx.fds.open(leader, '/dev/tty', O.RDWR | O.NOCTTY | O.CLOEXEC);
  if (leader === task) return fd;
  try {
    return fetchFd(task.remote, leader.pid, fd);
  } finally {
    leader.remote.sys.close(fd);
  }
}

/**
 * Once every fd is open: each session's controlling terminal, its foreground group (every group
 * exists since the tree was made), then the pty locks and exclusive modes, which would have kept
 * those opens out.
 */
export function restoreTerminalState(ctx: RestoreContext): void {
  const state = ttyRestoreState(ctx);
  for (const info of state.infos.values()) {
    if (info.type !== TtyType.PTY || !info.sid || (!isMasterInfo(info) && pairInfos(state, info.pty!.index).master)) continue;
    const leader = takeControllingTerminal(ctx, info);
    if (!leader || !info.pgrp) continue;
    const index = info.pty!.index;
    const fd = ctx.fds.open(leader, `/dev/pts/${index}`, O.RDWR | O.NOCTTY | O.CLOEXEC);
    try {
      ioctlSetIntIn(leader, fd, TIOC.TIOCSPGRP, info.pgrp, `ioctl(TIOCSPGRP ${info.pgrp})`);
    } finally {
      leader.remote.sys.close(fd);
    }
  }
  for (const info of state.infos.values()) {
    if (info.type !== TtyType.PTY || !(info.locked && isMasterInfo(info)) && !info.exclusive) continue;
    const at = state.placed.get(info.id);
    if (!at) continue;
    const copy = takeFd(at.pid, at.fd);
    try {
      if (info.locked && isMasterInfo(info)) ioctlSetInt(copy, TIOC.TIOCSPTLCK, 1, 'ioctl(TIOCSPTLCK)');
      if (info.exclusive) {
        const r = ioctlRaw(copy, TIOC.TIOCEXCL);
        if (r < 0) throw new KernelError('ioctl(TIOCEXCL)', -r, at.pid, `/dev/pts/${info.pty!.index}`);
      }
    } finally {
      close(copy);
    }
  }
}

function statOf(pid: number): ReturnType<typeof controllingTerminalOf> | undefined {
  try {
    return controllingTerminalOf(pid);
  } catch {
    return undefined; // gone since: reported as having no terminal
  }
}

/** Per session the dump saw controlled by a pty of the tree: the leader's controlling terminal and its foreground group. */
export function compareSessions(ctx: CompareContext, store: ImageStore): Difference[] {
  if (!store.has('tty-info')) return [];
  const out: Difference[] = [];
  for (const info of store.read<TtyInfoEntry>('tty-info', 'tty-info').entries) {
    if (info.type !== TtyType.PTY || !isMasterInfo(info) || !info.sid || !ctx.pids.includes(info.sid)) continue;
    const live = statOf(info.sid);
    const index = info.pty!.index;
    const ctty = live?.ttyNr ? `/dev/pts/${slaveIndexOf(live.ttyNr) ?? `? (${live.ttyNr})`}` : 'none';
    if (!live || live.ttyNr !== slaveRdev(index)) out.push({ plugin: 'tty', pid: info.sid, what: 'controlling terminal', expected: `/dev/pts/${index}`, actual: ctty });
    else if (live.tpgid !== info.pgrp) out.push({ plugin: 'tty', pid: info.sid, what: `foreground group of /dev/pts/${index}`, expected: `${info.pgrp}`, actual: `${live.tpgid}` });
  }
  return out;
}
