import { readFileSync } from 'node:fs';
import { ERESTART, PTRACE_EVENT, SIG, SYS, WNOHANG } from '../kernel/constants';
import type { Registers } from '../kernel/regs';
import { sleepSync } from '../kernel/libc';
import { waitpid, WaitStatus } from '../kernel/syscalls';
import { UnexpectedStopError } from './errors';
import type { RemoteSyscall, RestartMode } from './remote-syscall';
import { waitForStop } from './wait';

const ARG_REGS = ['di', 'si', 'dx', 'r10', 'r8', 'r9'] as const;
/** How long a re-issued syscall runs at least before it is interrupted, and at most unseen blocked. */
const SETTLE_MS = 5;
const BLOCK_WAIT_MS = 1000;

/** The syscalls that return -ERESTART_RESTARTBLOCK (x86-64). */
const RESTARTABLE = new Set<number>([SYS.poll, SYS.nanosleep, SYS.clock_nanosleep, SYS.futex]);

const isRestartBlock = (regs: Registers) => Number(regs.getSigned('ax')) === -ERESTART.RESTARTBLOCK;

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
  if (!isRestartBlock(final) || !RESTARTABLE.has(nr)) return { regs: final, mode: 'new-task' };
  const args = ARG_REGS.map((r) => final.get(r));
  if (nr === SYS.nanosleep && args[1]) args[0] = args[1];
  if (nr === SYS.clock_nanosleep && args[3]) args[2] = args[3];
  const ax = reissue(remote, final, nr, args);
  const out = final.clone();
  out.set('ax', ax);
  // -516 again: the block is in this task now. Anything else (a result, -EINTR,
  // -ERESTARTNOHAND) is handled as if the dump had seen it.
  return { regs: out, mode: Number(ax) === -ERESTART.RESTARTBLOCK ? 'same-task' : 'new-task' };
}

/**
 * A thread dumped while already inside restart_syscall (it was stopped or traced once during
 * its sleep, or dumped before with --leave-running) shows orig_rax = restart_syscall: the
 * original syscall is known only to the kernel's restart block, and a new task needs it. So the
 * dump runs restart_syscall in the thread once more, reads which restart function it is blocked
 * in from /proc/TID/stack, and interrupts it again (the block stays as it was: its timeouts are
 * absolute). The registers come back with orig_rax = the original syscall (its arguments are
 * still in their registers), or with its result if it completed meanwhile. `unknown` says the
 * restart function could not be read (/proc/TID/stack needs CAP_SYS_ADMIN): a restore then
 * ends the call with EINTR.
 */
export function identifyRestart(remote: RemoteSyscall, regs: Registers): { regs: Registers; unknown: boolean } {
  if (!isRestartBlock(regs) || Number(regs.getSigned('origAx')) !== SYS.restart_syscall) return { regs, unknown: false };
  let stack: string | undefined;
  const ax = reissue(remote, regs, SYS.restart_syscall, ARG_REGS.map((r) => regs.get(r)), () => {
    try {
      stack = readFileSync(`/proc/${remote.tracee.tid}/task/${remote.tracee.tid}/stack`, 'utf8');
    } catch {
      // unreadable: reported as unknown
    }
  });
  const out = regs.clone();
  out.set('ax', ax);
  if (Number(ax) !== -ERESTART.RESTARTBLOCK) return { regs: out, unknown: false };
  if (stack === undefined) return { regs: out, unknown: true };
  const nr = restartedSyscall(stack, regs);
  if (nr === undefined) return { regs: out, unknown: true };
  out.set('origAx', nr);
  return { regs: out, unknown: false };
}

/** Which syscall a restart function seen in /proc/TID/stack restarts; undefined if none known. */
function restartedSyscall(stack: string, regs: Registers): number | undefined {
  const frames = [...stack.matchAll(/\] ([A-Za-z0-9_.]+)\+/g)].map((m) => m[1]);
  if (frames.some((f) => /^(do_restart_poll|do_sys_poll|poll_schedule_timeout)/.test(f))) return SYS.poll;
  if (frames.some((f) => /^(futex_wait_restart|futex_wait|futex_do_wait|futex_wait_queue)/.test(f))) return SYS.futex;
  // hrtimer_nanosleep_restart may tail-call into the sleep (no frame of its own on 6.18)
  const own = frames.filter((f) => !/^(do_syscall_64|entry_SYSCALL_64)/.test(f));
  if (own.length && !own.some((f) => /nanosleep|nsleep/.test(f))) return undefined;
  // clock_nanosleep(clockid, flags, req, rem) or nanosleep(req, rem): a clock id is small
  return regs.get('di') < 4096n ? SYS.clock_nanosleep : SYS.nanosleep;
}

/**
 * Runs syscall nr in the thread from the scratch page and, unless it returns first, interrupts it
 * once it is blocked in it (after `whileBlocked`). Returns rax: the result, or the -ERESTART*
 * value the interrupt left.
 */
function reissue(remote: RemoteSyscall, template: Registers, nr: number, args: bigint[], whileBlocked?: () => void): bigint {
  const regs = template.clone();
  regs.set('ip', remote.scratch.base);
  regs.set('origAx', -1n);
  regs.set('ax', nr);
  args.forEach((a, i) => regs.set(ARG_REGS[i], a));
  const tracee = remote.tracee;
  tracee.setRegs(regs);
  tracee.cont(0);
  let started = Date.now();
  let interrupted = false;
  for (;;) {
    const { pid, status } = interrupted ? waitForStop(tracee.tid, `re-issuing syscall ${nr}`) : waitpid(tracee.tid, WNOHANG);
    if (pid === 0) {
      const waited = Date.now() - started;
      if (waited >= SETTLE_MS && (blockedIn(tracee.tid, nr) || waited >= BLOCK_WAIT_MS)) {
        whileBlocked?.();
        tracee.interrupt();
        interrupted = true;
      } else {
        sleepSync(1);
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
    if (event === PTRACE_EVENT.STOP && now.get('ip') === remote.scratch.base) {
      // interrupted before it got to the syscall: let it make it
      tracee.setRegs(regs);
      tracee.cont(0);
      interrupted = false;
      started = Date.now();
      continue;
    }
    if (event === PTRACE_EVENT.STOP) return now.getSigned('ax');
    if (event !== 0 || WaitStatus.stopSig(status) !== SIG.TRAP) throw new UnexpectedStopError(tracee.tid, status, `SIGTRAP after re-issued syscall ${nr}`);
    // Completed before the interrupt: a PTRACE_EVENT_STOP may still come, and the next
    // injected call passes over it.
    return now.getSigned('ax');
  }
}

/** Whether the thread sits in syscall nr (/proc/TID/syscall names it while blocked, says "running" otherwise). */
function blockedIn(tid: number, nr: number): boolean {
  try {
    return readFileSync(`/proc/${tid}/task/${tid}/syscall`, 'utf8').startsWith(`${nr} `);
  } catch {
    return false;
  }
}
