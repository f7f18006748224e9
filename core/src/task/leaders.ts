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
  ) {
    const from = kind === 'session' ? 'the session leader' : 'the group leader';
    super(
      `pid ${pid} is in ${kind} ${leader}, whose leader (pid ${leader}, ${leaderComm}) is outside the dumped tree: ` +
        `dump from ${from}, or use --shell-job (not supported yet)`,
    );
  }
}

/**
 * A restored task can only be in a session or group whose leader's pid it can re-create. A leader
 * that exited is re-created as a stand-in at restore; one that still runs outside the tree keeps
 * its pid, so the restored task would be put in a session of a pid that is not its leader.
 * While a member lives the kernel keeps the leader's pid from being reused, so a live process
 * with that pid is the leader itself.
 */
export function checkLeadersInside(stats: Iterable<ProcStat>): void {
  const all = [...stats];
  const inTree = new Set(all.map((s) => s.pid));
  for (const st of all) {
    for (const [kind, leader] of [['session', st.session], ['process group', st.pgrp]] as const) {
      if (leader === 0 || inTree.has(leader) || !existsSync(`/proc/${leader}`)) continue;
      let comm = '?';
      try {
        comm = readStat(leader).comm;
      } catch {
        continue; // exited just now: a dead leader, which a stand-in replaces
      }
      throw new OutsideLeaderError(st.pid, kind, leader, comm);
    }
  }
}
