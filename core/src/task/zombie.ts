import { KSIGACTION_SIZE, NSIG, PR, SIG } from '../kernel/constants';
import { TaskState, type CoreEntry, type SaEntry } from '../images';
import type { RemoteSyscall } from '../ptrace/remote-syscall';
import { parseStatus, procRead, type ProcStat } from './proc';
import { sigactionOf, SIGACTION_SIGNALS } from './sigactions';

const SIG_DFL = 0n;
const SIG_IGN = 1n;
/**
 * A zombie's caught signals: the handler's address went with its memory and it never runs again,
 * so any value that is neither SIG_DFL nor SIG_IGN stands for "caught" (/proc shows it in SigCgt).
 */
const CAUGHT = 2n;

/**
 * What a zombie still shows: its exit status, its name and its signal masks (/proc/PID/status
 * SigBlk, SigIgn, SigCgt; a zombie's sighand lives until it is reaped).
 */
export function zombieCore(pid: number, stat: ProcStat, waitStatus: number): CoreEntry {
  const status = parseStatus(procRead(pid, 'status'));
  const mask = (field: string) => BigInt(`0x${status.get(field) ?? '0'}`);
  const ignored = mask('SigIgn');
  const caught = mask('SigCgt');
  const sigactions: SaEntry[] = [];
  for (const sig of SIGACTION_SIGNALS) {
    const bit = 1n << BigInt(sig - 1);
    const handler = ignored & bit ? SIG_IGN : caught & bit ? CAUGHT : SIG_DFL;
    sigactions.push({ sigaction: handler, flags: 0n, restorer: 0n, mask: 0n });
  }
  return {
    mtype: 1,
    tc: {
      taskState: TaskState.DEAD, exitCode: waitStatus, personality: 0, flags: stat.flags, blkSigset: mask('SigBlk'),
      comm: stat.comm, sigactions,
    },
  };
}

/**
 * Before a task made to be a zombie ends: the dumped zombie's name, handlers and blocked mask.
 * The signal that killed it (if any) goes back to default and unblocked, or it could not kill.
 */
export function prepareZombie(remote: RemoteSyscall, tc: NonNullable<CoreEntry['tc']>): void {
  const killedBy = tc.exitCode & 0x7f;
  remote.resetData();
  remote.sys.prctl(PR.SET_NAME, remote.stageString(tc.comm.slice(0, 15)));
  const act = Buffer.alloc(KSIGACTION_SIZE);
  for (let sig = 1; sig <= NSIG; sig++) {
    if (sig === SIG.KILL || sig === SIG.STOP) continue;
    const handler = sig === killedBy ? SIG_DFL : sigactionOf(tc.sigactions, sig)?.sigaction ?? SIG_DFL;
    act.writeBigUInt64LE(handler, 0);
    remote.resetData();
    remote.setSigaction(sig, act, `signal ${sig} of a zombie`);
  }
  const killer = killedBy ? 1n << BigInt(killedBy - 1) : 0n;
  remote.tracee.setSigmask(tc.blkSigset & ~killer);
}
