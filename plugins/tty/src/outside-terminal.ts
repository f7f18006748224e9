import { openSync, closeSync, fstatSync } from 'node:fs';
import { isatty } from 'node:tty';
import {
  AmberError, O, close, fetchFd, getpgid, getTermios, getWinsize, kill, setTermios, takeFd,
  type Termios, type Winsize, type DumpContext, type DumpOptions, type FdResource, type RestoreContext, type RestoreOptions, type RestoreTask,
} from '@amber/core';
import { encodeDev, majorOf, minorOf, slaveRdev } from './devices';
import { TtyType, type TtyInfoEntry } from './images';
import { termiosEntry, termiosOf, winsizeEntry, winsizeOf } from './termios';

const SIGWINCH = 28;

/** --shell-job (DumpOptions/RestoreOptions.shellJob, from the job work): a terminal outside the tree is the caller's. */
export const shellJob = (options: DumpOptions | RestoreOptions) => (options as { shellJob?: boolean }).shellJob === true;

/** A terminal end whose pty master no task of the tree holds: without -j there is nothing to restore it from. */
export class OutsideTerminalError extends AmberError {
  constructor(readonly pid: number, readonly fd: number, readonly path: string) {
    super(`fd ${fd} of pid ${pid} is ${path}, a terminal whose master is outside the dumped tree: dump it as a shell job (-j/--shell-job) to have it restored on amber's own terminal; nothing was changed and the process keeps running`);
  }
}

export class NoTerminalError extends AmberError {
  constructor(readonly pid: number, key: string) {
    super(`pid ${pid} had the outside terminal ${key} (a shell job), but amber runs on no terminal to give it: run amber restore -j from a terminal, or hand one in with --inherit-fd fd[N]:${key}`);
  }
}

/** CRIU's key of an external terminal (--inherit-fd fd[N]:tty[RDEV:DEV], hex). */
export const outsideTerminalKey = (info: TtyInfoEntry) => `tty[${info.rdev.toString(16)}:${(info.dev ?? 0).toString(16)}]`;

/** The outside terminal, recorded (CRIU's EXT_TTY), not dumped: its state belongs to whoever holds its master. */
export function dumpOutsideTerminal(ctx: DumpContext, fd: FdResource, index: number): Omit<TtyInfoEntry, 'id'> {
  if (!shellJob(ctx.options)) throw new OutsideTerminalError(fd.pid, fd.fd, fd.link === '/dev/tty' ? `/dev/tty (/dev/pts/${index})` : fd.link);
  // Its mode is the job's (an editor's raw mode): it goes onto the terminal the job is restored on.
  const copy = takeFd(fd.pid, fd.fd);
  let mode: Pick<TtyInfoEntry, 'termios' | 'winsize'>;
  try {
    mode = { termios: termiosEntry(getTermios(copy)), winsize: winsizeEntry(getWinsize(copy)) };
  } finally {
    close(copy);
  }
  return { type: TtyType.EXT_TTY, locked: false, exclusive: false, packetMode: false, sid: 0, pgrp: 0, rdev: slaveRdev(index), pty: { index }, dev: encodeDev(majorOf(fd.dev), minorOf(fd.dev)), ...mode };
}

/** A terminal as it was before the job's mode went onto it, put back if the restore fails. */
interface CallersMode {
  fd: number;
  termios: Termios;
  /** The size the job's terminal had at dump, and the tasks given the terminal. */
  dumpedSize?: Winsize;
  holders: Set<number>;
}
/** By the tty-info id of the outside terminal it stands for. */
const callersModes = (ctx: RestoreContext) => ctx.state('tty:callers-modes', () => new Map<number, CallersMode>());

/** The job's dumped mode onto the terminal it gets (amber's, or one handed in), once, keeping that terminal's to put back after a failure. */
function applyJobMode(ctx: RestoreContext, fd: number, info: TtyInfoEntry, pid: number): void {
  const saved = callersModes(ctx);
  const known = saved.get(info.id);
  if (known) known.holders.add(pid);
  if (known || !info.termios) return;
  const own = openSync(`/proc/self/fd/${fd}`, O.RDWR | O.NOCTTY | O.CLOEXEC);
  saved.set(info.id, { fd: own, termios: getTermios(own), dumpedSize: info.winsize && winsizeOf(info.winsize), holders: new Set([pid]) });
  setTermios(own, termiosOf(info.termios));
}

/**
 * A job restored onto a terminal of another size than its old one is told, as the kernel tells
 * a terminal's foreground group when its size changes (SIGWINCH to each group holding it).
 */
function tellResized(mode: CallersMode): void {
  const now = getWinsize(mode.fd);
  const was = mode.dumpedSize;
  if (!was || (now.row === was.row && now.col === was.col)) return;
  const groups = new Set<number>();
  for (const pid of mode.holders) {
    try {
      groups.add(getpgid(pid));
    } catch {
      // exited already
    }
  }
  for (const g of groups) kill(-g, SIGWINCH);
}

/** After the restore: a failed one puts those terminals' modes back; once the job runs, a resized terminal is announced. */
export function releaseCallersMode(ctx: RestoreContext, succeeded: boolean): void {
  const saved = callersModes(ctx);
  for (const mode of saved.values()) {
    try {
      if (!succeeded) setTermios(mode.fd, mode.termios);
      else tellResized(mode);
    } finally {
      close(mode.fd);
    }
  }
  saved.clear();
}

/** amber's own terminal: its stdin if that is one, else its /dev/tty. The fd stays amber's. */
function callersTerminal(): { fd: number; opened: boolean } | undefined {
  if (isatty(0)) return { fd: 0, opened: false };
  try {
    return { fd: openSync('/dev/tty', O.RDWR | O.NOCTTY), opened: true };
  } catch {
    return undefined;
  }
}

/**
 * In task, the terminal an outside terminal end stands for: the one handed in with --inherit-fd,
 * else amber's own; a /dev/tty fd gets amber's /dev/tty.
 */
export function openOutsideTerminal(ctx: RestoreContext, task: RestoreTask, info: TtyInfoEntry, viaDevTty: boolean, flags: number = O.RDWR): number {
  const key = outsideTerminalKey(info);
  const inherited = ctx.options.inheritFds?.find((i) => i.key === key);
  if (inherited) {
    applyJobMode(ctx, inherited.fd, info, task.pid);
    return fetchFd(task.remote, process.pid, inherited.fd);
  }
  if (!shellJob(ctx.options)) throw new AmberError(`pid ${task.pid} had the outside terminal ${key}: restore it as a shell job (-j/--shell-job) or hand one in with --inherit-fd fd[N]:${key}`);
  let mine: { fd: number; opened: boolean } | undefined;
  if (viaDevTty) {
    try {
      mine = { fd: openSync('/dev/tty', O.RDWR | O.NOCTTY), opened: true };
    } catch {
      mine = undefined;
    }
  } else {
    mine = callersTerminal();
  }
  if (!mine || !fstatSync(mine.fd).isCharacterDevice()) throw new NoTerminalError(task.pid, key);
  // A description of its own (opened again through /proc): amber's fd 0 is its shell's, whose
  // status flags (O_NONBLOCK) the job must neither see nor change.
  let own: number | undefined;
  try {
    applyJobMode(ctx, mine.fd, info, task.pid);
    own = openSync(`/proc/self/fd/${mine.fd}`, (flags & (O.ACCMODE | O.NONBLOCK | O.APPEND)) | O.NOCTTY | O.CLOEXEC);
    return fetchFd(task.remote, process.pid, own);
  } finally {
    if (own !== undefined) closeSync(own);
    if (mine.opened) closeSync(mine.fd);
  }
}
