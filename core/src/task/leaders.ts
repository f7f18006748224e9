import { existsSync } from 'node:fs';
import { AmberError } from '../kernel/errors';
import { readStat, type ProcStat } from './proc';

/** A task of the tree whose session or process group is led by a live process outside it. */
export class OutsideLeaderError extends AmberError {
  constructor(
    readonly pid: number,
    readonly kind: 'session' | 'process group',
    readonly leader: number,
    readonly leaderComm: string,
    readonly terminal: string | undefined,
    readonly shellJob: boolean,
  ) {
    const from = kind === 'session' ? 'the session leader' : 'the group leader';
    const on = terminal ? ` (on terminal ${terminal})` : '';
    const head = `pid ${pid}${on} is in ${kind} ${leader}, whose leader (pid ${leader}, ${leaderComm}) is outside the dumped tree`;
    super(
      shellJob
        ? `${head}, and it is not the root's ${kind}: -j/--shell-job takes only the root's own outside session and group; dump from ${from}`
        : `${head}: dump from ${from}, or use -j/--shell-job to dump it as a job of that shell`,
    );
  }
}

/** The images hold a shell job (a root whose session or group leader was outside the tree); restore needs -j. */
export class ShellJobImageError extends AmberError {
  constructor(readonly pid: number, readonly kind: 'session' | 'process group', readonly leader: number) {
    super(
      `pid ${pid} was dumped in ${kind} ${leader}, whose leader was outside the tree (a shell job): ` +
        `restore it with -j/--shell-job, into amber's own session and terminal`,
    );
  }
}

/**
 * A restored task can only be in a session or group whose leader's pid it can re-create. A leader
 * that exited is re-created as a stand-in at restore; one that still runs outside the tree keeps
 * its pid, so the restored task would be put in a session of a pid that is not its leader.
 * While a member lives the kernel keeps the leader's pid from being reused, so a live process
 * with that pid is the leader itself.
 *
 * A shell job (`shellJob`, CRIU's --shell-job) is the exception for the root's own session and
 * group: those belong to the shell it was started from, and the restore puts the tree into the
 * session of the shell amber runs in instead (engine/shell-job.ts).
 */
export function checkLeadersInside(stats: Iterable<ProcStat>, rootPid: number, shellJob = false): void {
  const all = [...stats];
  const inTree = new Set(all.map((s) => s.pid));
  const root = all.find((s) => s.pid === rootPid);
  for (const st of all) {
    for (const [kind, leader] of [['session', st.session], ['process group', st.pgrp]] as const) {
      if (leader === 0 || inTree.has(leader) || !existsSync(`/proc/${leader}`)) continue;
      if (shellJob && root && leader === (kind === 'session' ? root.session : root.pgrp)) continue;
      let comm = '?';
      try {
        comm = readStat(leader).comm;
      } catch {
        continue; // exited just now: a dead leader, which a stand-in replaces
      }
      throw new OutsideLeaderError(st.pid, kind, leader, comm, terminalName(st.ttyNr), shellJob);
    }
  }
}

/**
 * The root of a dumped tree whose session or group leader is not in the images: restored into
 * amber's own session with -j, refused without (CRIU refuses a root that is not its session's
 * leader unless --shell-job).
 */
export function checkShellJobRoot(root: { pid: number; sid: number; pgid: number }, inTree: (pid: number) => boolean, shellJob: boolean): void {
  if (shellJob) return;
  if (root.sid !== root.pid && !inTree(root.sid)) throw new ShellJobImageError(root.pid, 'session', root.sid);
  if (root.pgid !== root.pid && !inTree(root.pgid)) throw new ShellJobImageError(root.pid, 'process group', root.pgid);
}

/** /dev name of a controlling terminal from /proc/PID/stat's tty_nr, or undefined for none. */
export function terminalName(ttyNr: number): string | undefined {
  if (!ttyNr) return undefined;
  const major = (ttyNr >> 8) & 0xfff;
  const minor = (ttyNr & 0xff) | ((ttyNr >> 12) & 0xfff00);
  // Unix98 pty slaves: majors 136-143, the index spread over the major's low bits and the minor
  if (major >= 136 && major < 144) return `/dev/pts/${(major - 136) * 256 + minor}`;
  if (major === 4) return minor < 64 ? `/dev/tty${minor}` : `/dev/ttyS${minor - 64}`;
  if (major === 5 && minor === 1) return '/dev/console';
  return `the terminal device ${major}:${minor}`;
}
