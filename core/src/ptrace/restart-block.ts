import { ERESTART, PTRACE_EVENT, SIG, SYS, WNOHANG } from '../kernel/constants';
import type { Registers } from '../kernel/regs';
import { waitpid, WaitStatus } from '../kernel/syscalls';
import { UnexpectedStopError } from './errors';
import type { RemoteSyscall, RestartMode } from './remote-syscall';

const ARG_REGS = ['di', 'si', 'dx', 'r10', 'r8', 'r9'] as const;
/** How long the re-issued syscall may run before it is interrupted (it blocks, as it did). */
const SETTLE_MS = 5;

/**
 * A thread dumped inside poll, nanosleep, clock_nanosleep or futex with a timeout stopped with
 * -ERESTART_RESTARTBLOCK: the kernel meant to resume it through restart_syscall, which runs the
 * function kept in the task's restart_block. A new task has no such block (restart_syscall
 * there returns EINTR: `tail -f` exited with "Interrupted system call"). The block is rebuilt
 * the way the kernel builds it: the task makes the same syscall again, from the scratch page,
 * and is interrupted while blocked in it; then it resumes through restart_syscall as it would
 * have. A relative sleep that gave the kernel somewhere to write the time left (nanosleep's
 * `rem`, which the kernel filled when the dump interrupted it) sleeps that long; other timeouts
 * start over with what the program asked for. If the syscall completes at once (the poll finds
 * an fd ready, the futex word has changed, the time is up), its result is the one the program
 * gets.
 *
 * Returns the registers to resume with from the syscall-exit stop, and how to treat them.
 */
export function rebuildRestartBlock(remote: RemoteSyscall, final: Registers): { regs: Registers; mode: RestartMode } {
  const nr = Number(final.getSigned('origAx'));
  if (Number(final.getSigned('ax')) !== -ERESTART.RESTARTBLOCK || !RESTARTABLE.has(nr)) return { regs: final, mode: 'new-task' };
  const args = ARG_REGS.map((r) => final.get(r));
  if (nr === SYS.nanosleep && args[1]) args[0] = args[1];
  if (nr === SYS.clock_nanosleep && args[3]) args[2] = args[3];
  const regs = final.clone();
  regs.set('ip', remote.scratch.base);
  regs.set('origAx', -1n);
  regs.set('ax', nr);
  args.forEach((a, i) => regs.set(ARG_REGS[i], a));
  const tracee = remote.tracee;
  tracee.setRegs(regs);
  tracee.cont(0);
  let deadline = Date.now() + SETTLE_MS;
  let interrupted = false;
  for (;;) {
    const { pid, status } = waitpid(tracee.tid, interrupted ? 0 : WNOHANG);
    if (pid === 0) {
      if (Date.now() >= deadline) {
        tracee.interrupt();
        interrupted = true;
      }
      continue;
    }
    if (!WaitStatus.stopped(status)) throw new UnexpectedStopError(tracee.tid, status, `re-issuing syscall ${nr}`);
    const event = WaitStatus.event(status);
    if (event === PTRACE_EVENT.STOP && !interrupted) {
      tracee.cont(0);
      continue;
    }
    const now = tracee.getRegs();
    const ax = now.getSigned('ax');
    if (event === PTRACE_EVENT.STOP && now.get('ip') === remote.scratch.base) {
      // interrupted before it got to the syscall: let it make it
      tracee.setRegs(regs);
      tracee.cont(0);
      interrupted = false;
      deadline = Date.now() + SETTLE_MS;
      continue;
    }
    if (event === PTRACE_EVENT.STOP) {
      const out = final.clone();
      out.set('ax', ax);
      // -516 again: the block is in this task now. Anything else (-EINTR, -ERESTARTNOHAND)
      // is handled as if the dump had seen it.
      return { regs: out, mode: Number(ax) === -ERESTART.RESTARTBLOCK ? 'same-task' : 'new-task' };
    }
    if (event !== 0 || WaitStatus.stopSig(status) !== SIG.TRAP) throw new UnexpectedStopError(tracee.tid, status, `SIGTRAP after re-issued syscall ${nr}`);
    // Completed before the interrupt: a PTRACE_EVENT_STOP may still come, and the next
    // injected call passes over it.
    const out = final.clone();
    out.set('ax', ax);
    return { regs: out, mode: 'new-task' };
  }
}

/** The syscalls that return -ERESTART_RESTARTBLOCK (x86-64). */
const RESTARTABLE = new Set<number>([SYS.poll, SYS.nanosleep, SYS.clock_nanosleep, SYS.futex]);
