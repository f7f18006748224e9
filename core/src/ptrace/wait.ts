import { readFileSync } from 'node:fs';
import { SIG, WNOHANG } from '../kernel/constants';
import { KernelError } from '../kernel/errors';
import { ensureWakeHandler, WAKE_SIGNAL } from '../kernel/signal-trap';
import { sleepSync } from '../kernel/libc';
import { timerCreateForThread, timerSetPeriodic, waitpid, waitpidOrInterrupted, WaitStatus, type WaitResult } from '../kernel/syscalls';
import { TaskGoneError, WaitTimeoutError } from './errors';
import { interruptPending } from './interrupt';

/*
 * Waiting for a traced thread must end whatever happens to it. wait4(tid) alone does not:
 * - a thread-group leader's exit is reported only once every other thread of the group is gone,
 *   and those are traced zombies until amber collects them: waiting for the leader first waits
 *   forever;
 * - a thread that is reaped by someone else, or was never stopped, gives ECHILD or nothing.
 * So a blocking wait4 is woken every TICK_MS (a timer of amber's sends WAKE_SIGNAL to the main
 * thread, whose handler does nothing: wait4 returns EINTR) and looks at the thread in /proc.
 */

const TICK_MS = 100;
/** A thread that is alive but stops for nothing this long is given up on. */
export const STOP_WAIT_LIMIT_MS = 5 * 60_000;

/** After amber is interrupted, how much longer a thread that does not stop is waited for. */
const INTERRUPTED_WAIT_LIMIT_MS = 10_000;

let ticker: number | undefined;

function tickTimer(): number {
  if (ticker === undefined) {
    ensureWakeHandler();
    ticker = timerCreateForThread(WAKE_SIGNAL, process.pid);
  }
  return ticker;
}

/** Z, X or no such task: the thread has exited (its end may not be reportable yet). */
export function threadHasExited(tid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${tid}/stat`, 'utf8');
    const state = stat[stat.lastIndexOf(')') + 2];
    return state === 'Z' || state === 'X';
  } catch {
    return true;
  }
}

/**
 * A thread that was killed runs on (state R) for a moment before it is a zombie, and ptrace calls
 * on it fail with ESRCH meanwhile: whether it is gone, or going within ms.
 */
export function threadExitsWithin(tid: number, ms: number): boolean {
  const until = Date.now() + ms;
  for (;;) {
    if (threadHasExited(tid)) return true;
    if (Date.now() >= until) return false;
    sleepSync(5);
  }
}

/** Waits for the next stop (or end) of a traced thread; throws TaskGoneError once it has exited. */
export function waitForStop(tid: number, during: string, limitMs = STOP_WAIT_LIMIT_MS): WaitResult {
  const timer = tickTimer();
  const started = Date.now();
  const deadline = started + limitMs;
  let interruptedAt: number | undefined;
  let r: WaitResult | undefined;
  // A first try without the timer: most stops are there within microseconds.
  r = waitpidOrInterruptedOrGone(tid, WNOHANG, during);
  if (r.pid === tid) return r;
  timerSetPeriodic(timer, TICK_MS);
  try {
    for (;;) {
      r = waitpidOrInterruptedOrGone(tid, 0, during);
      if (r.pid === tid) return r;
      if (threadHasExited(tid)) {
        // a last look: its end may have become reportable meanwhile
        const last = waitpidOrInterruptedOrGone(tid, WNOHANG, during);
        if (last.pid === tid) return last;
        throw new TaskGoneError(tid, undefined, during);
      }
      if (Date.now() > deadline) throw new WaitTimeoutError(tid, during, limitMs);
      // asked to stop: a thread that will not stop is not waited for much longer
      if (interruptPending()) {
        interruptedAt ??= Date.now();
        if (Date.now() - interruptedAt > INTERRUPTED_WAIT_LIMIT_MS) throw new WaitTimeoutError(tid, during, Date.now() - started);
      }
    }
  } finally {
    timerSetPeriodic(timer, 0);
  }
}

/** wait4 once: {pid: 0} when interrupted or nothing to report; ECHILD as TaskGoneError. */
function waitpidOrInterruptedOrGone(tid: number, flags: number, during: string): WaitResult {
  try {
    return waitpidOrInterrupted(tid, flags) ?? { pid: 0, status: 0 };
  } catch (e) {
    if (e instanceof KernelError && e.errnoName === 'ECHILD') throw new TaskGoneError(tid, undefined, during, 'is no longer traced by amber (reaped by another process?)');
    throw e;
  }
}

/**
 * Collects the ends of traced threads that are on their way out (killed, or made to exit),
 * letting each one go on from any stop it makes, in whatever order the kernel reports them
 * (a leader last). Returns the threads still not collected after timeoutMs.
 */
export function collectExits(threads: { tid: number; cont(sig: number): void }[], timeoutMs = 10_000): number[] {
  let left = [...threads];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    left = left.filter((t) => {
      for (;;) {
        let r: WaitResult;
        try {
          r = waitpid(t.tid, WNOHANG);
        } catch (e) {
          if (e instanceof KernelError && e.errnoName === 'ECHILD') return false;
          throw e;
        }
        if (r.pid === 0) return true;
        if (!WaitStatus.stopped(r.status)) return false; // exited or killed
        const sig = WaitStatus.stopSig(r.status);
        try {
          t.cont(sig === SIG.TRAP || WaitStatus.event(r.status) ? 0 : sig);
        } catch {
          // gone meanwhile: the next wait says so
        }
      }
    });
    if (!left.length || Date.now() > deadline) return left.map((t) => t.tid);
    sleepSync(2);
  }
}

/**
 * A syscall-entry or -exit stop: SIGTRAP, or SIGTRAP|0x80 with PTRACE_O_TRACESYSGOOD. A dump
 * seizes with TRACESYSGOOD: a tracer that dies while its tracee sits in a syscall stop leaves the
 * stop's code as a signal to deliver, and 0x85 is no signal, where plain SIGTRAP would kill.
 */
export function isSyscallStop(status: number): boolean {
  return WaitStatus.event(status) === 0 && (WaitStatus.stopSig(status) & 0x7f) === SIG.TRAP;
}
