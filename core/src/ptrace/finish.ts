import { ERESTART, SYS } from '../kernel/constants';
import type { Registers } from '../kernel/regs';
import { rebuildRestartBlock } from './restart-block';
import type { RemoteSyscall, RestartMode } from './remote-syscall';

// The end of a restore: every task's last injected call (the leaders' munmap of the scratch
// area) and the registers it leaves with.

/** One task for finishTogether: its final registers; `unmaps`: the leader, whose finish unmaps the scratch area. */
export interface FinishPart {
  remote: RemoteSyscall;
  final: Registers;
  mode: RestartMode;
  unmaps: boolean;
  sigmask?: bigint;
}

/**
 * finish() of the leaders and finishThread() of the other threads, for many tasks at once: each
 * step (resume to the syscall entry, to its exit) is given to every task before amber waits for
 * any, so their round trips overlap instead of adding up. The threads go first, then the leaders,
 * whose munmap takes the scratch area the threads ran their last call in.
 */
export function finishTogether(parts: readonly FinishPart[]): void {
  // a rebuilt restart block is an injected call that stages data: one task at a time
  const ready = parts.map((p) => ({ ...p, ...(p.mode === 'new-task' ? rebuildRestartBlock(p.remote, p.final) : { regs: p.final, mode: p.mode }) }));
  for (const group of [ready.filter((p) => !p.unmaps), ready.filter((p) => p.unmaps)]) {
    for (const p of group) p.remote.enterLastCall(p.unmaps);
    for (const p of group) p.remote.awaitLastCallStop('entry');
    for (const p of group) {
      if (p.unmaps && p.sigmask !== undefined) p.remote.tracee.setSigmask(p.sigmask);
      p.remote.tracee.syscallStep();
    }
    for (const p of group) p.remote.awaitLastCallStop('exit');
    for (const p of group) p.remote.leaveFromLastCall(p.unmaps, p.regs, p.mode, p.unmaps ? undefined : p.sigmask);
  }
}

/**
 * Registers to resume with from a syscall-exit stop. A task dumped while the kernel was about to
 * restart its syscall (rax = -ERESTART*) would have been restarted on the way out of the signal
 * stop; leaving from a syscall-exit stop skips that, so do what the kernel would have done.
 */
export function resumeFromSyscallExit(regs: Registers, mode: RestartMode): Registers {
  const out = regs.clone();
  if (regs.getSigned('origAx') < 0n) return out;
  const ax = -Number(regs.getSigned('ax'));
  if (ax === ERESTART.SYS || ax === ERESTART.NOINTR || ax === ERESTART.NOHAND) {
    out.set('ax', regs.get('origAx'));
    out.set('ip', regs.get('ip') - 2n);
  } else if (ax === ERESTART.RESTARTBLOCK) {
    if (mode === 'same-task') {
      out.set('ax', SYS.restart_syscall);
      out.set('ip', regs.get('ip') - 2n);
    } else {
      // The kernel's restart_block did not survive the checkpoint.
      out.set('ax', -4n /* -EINTR */);
    }
  }
  return out;
}

