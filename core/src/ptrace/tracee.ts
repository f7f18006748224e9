import { NT_X86_XSTATE, PTRACE, PTRACE_EVENT, SIG } from '../kernel/constants';
import { KernelError } from '../kernel/errors';
import { addressOf } from '../kernel/libc';
import { Registers, USER_REGS_SIZE } from '../kernel/regs';
import { ptrace, ptraceBuf, WaitStatus } from '../kernel/syscalls';
import { TaskGoneError } from './errors';
import { waitForStop } from './wait';
import { readU32, readU64, writeU32, writeU64 } from '../kernel/bytes';

export interface RseqConfig {
  pointer: bigint;
  size: number;
  flags: number;
  signature: number;
}

const XSTATE_MAX = 64 * 1024;
export const SIGINFO_SIZE = 128;

/**
 * One traced thread. ptrace is per thread and per tracer thread: every method must run on
 * Node's main thread, the one that seized.
 */
export class Tracee {
  /** The wait status of the stop amber first saw (a group-stop carries its stop signal). */
  firstStop = 0;

  private constructor(readonly tid: number) {}

  /** Attaches with PTRACE_SEIZE and stops the thread with PTRACE_INTERRUPT. */
  /** stopWithinMs: how long the thread is given to stop (WaitTimeoutError after). */
  static seize(tid: number, options = 0, stopWithinMs?: number): Tracee {
    const t = Tracee.seizeInterrupting(tid, options);
    t.awaitFirstStop(stopWithinMs);
    return t;
  }

  /**
   * PTRACE_SEIZE and PTRACE_INTERRUPT without waiting for the stop, so that several threads
   * stop at once; awaitFirstStop() then waits for it.
   */
  static seizeInterrupting(tid: number, options = 0): Tracee {
    ptrace(PTRACE.SEIZE, tid, 0, options, 'PTRACE_SEIZE');
    const t = new Tracee(tid);
    try {
      ptrace(PTRACE.INTERRUPT, tid, 0, 0, 'PTRACE_INTERRUPT');
    } catch (e) {
      t.detachQuietly();
      throw e;
    }
    return t;
  }

  /** The stop of the interrupt seizeInterrupting() sent (firstStop); on failure the thread is let go. */
  awaitFirstStop(withinMs?: number): void {
    try {
      this.firstStop = this.waitForInterrupt(withinMs);
    } catch (e) {
      this.detachQuietly();
      throw e;
    }
  }

  /** A thread that became traced by itself (a child of a traced task with TRACEFORK/CLONE). */
  static adopt(tid: number): Tracee {
    return new Tracee(tid);
  }

  /**
   * Waits for the PTRACE_EVENT_STOP of an interrupt. A real signal arriving first is delivered
   * (the task would have taken it anyway) and we wait again.
   */
  waitForInterrupt(withinMs?: number): number {
    const until = withinMs === undefined ? undefined : Date.now() + withinMs;
    for (;;) {
      const status = this.wait('seizing', until === undefined ? undefined : Math.max(0, until - Date.now()));
      if (WaitStatus.event(status) === PTRACE_EVENT.STOP) return status;
      const sig = WaitStatus.stopSig(status);
      if (WaitStatus.event(status) !== 0) {
        this.cont(0);
        continue;
      }
      this.cont(sig === SIG.TRAP ? 0 : sig);
    }
  }

  /**
   * Waits for the thread's next stop; TaskGoneError when it exits instead (also when its end
   * cannot be reported yet, see waitForStop). A signal that interrupts amber (InterruptGuard)
   * does not end the wait: it is thrown at the next injected call's start.
   */
  wait(during: string, limitMs?: number): number {
    const { status } = waitForStop(this.tid, during, limitMs);
    if (!WaitStatus.stopped(status)) throw new TaskGoneError(this.tid, status, during);
    return status;
  }

  /**
   * Lets a thread that is on its way out (killed, or made to exit) run until it is gone, passing
   * on any signal it stops for; its end is collected by us, its tracer.
   */
  runToExit(during: string): void {
    for (;;) {
      let status: number;
      try {
        status = this.wait(during);
      } catch (e) {
        if (e instanceof TaskGoneError || e instanceof KernelError) return;
        throw e;
      }
      const sig = WaitStatus.stopSig(status);
      this.cont(sig === SIG.TRAP || WaitStatus.event(status) ? 0 : sig);
    }
  }

  getRegs(): Registers {
    const regs = new Registers();
    ptrace(PTRACE.GETREGS, this.tid, 0, regs.raw, 'PTRACE_GETREGS');
    return regs;
  }

  setRegs(regs: Registers): void {
    ptrace(PTRACE.SETREGS, this.tid, 0, regs.raw, 'PTRACE_SETREGS');
  }

  getXstate(): Buffer {
    const buf = Buffer.alloc(XSTATE_MAX);
    const iov = Buffer.alloc(16);
    writeU64(iov, 0, addressOf(buf));
    writeU64(iov, 8, BigInt(XSTATE_MAX));
    ptraceBuf(PTRACE.GETREGSET, this.tid, NT_X86_XSTATE, iov, 'PTRACE_GETREGSET(NT_X86_XSTATE)');
    return Buffer.from(buf.subarray(0, Number(readU64(iov, 8))));
  }

  setXstate(xstate: Buffer): void {
    const buf = Buffer.from(xstate);
    const iov = Buffer.alloc(16);
    writeU64(iov, 0, addressOf(buf));
    writeU64(iov, 8, BigInt(buf.length));
    ptraceBuf(PTRACE.SETREGSET, this.tid, NT_X86_XSTATE, iov, 'PTRACE_SETREGSET(NT_X86_XSTATE)');
  }

  getSigmask(): bigint {
    const buf = Buffer.alloc(8);
    ptrace(PTRACE.GETSIGMASK, this.tid, 8, buf, 'PTRACE_GETSIGMASK');
    return readU64(buf, 0);
  }

  setSigmask(mask: bigint): void {
    const buf = Buffer.alloc(8);
    writeU64(buf, 0, mask);
    ptrace(PTRACE.SETSIGMASK, this.tid, 8, buf, 'PTRACE_SETSIGMASK');
  }

  /** The thread's rseq registration; none on kernels before 5.13, which cannot report it (EIO). */
  getRseqConfig(): RseqConfig {
    const buf = Buffer.alloc(24);
    try {
      ptrace(PTRACE.GET_RSEQ_CONFIGURATION, this.tid, 24, buf, 'PTRACE_GET_RSEQ_CONFIGURATION');
    } catch (e) {
      if (e instanceof KernelError && e.errnoName === 'EIO') return { pointer: 0n, size: 0, flags: 0, signature: 0 };
      throw e;
    }
    return {
      pointer: readU64(buf, 0),
      size: readU32(buf, 8),
      signature: readU32(buf, 12),
      flags: readU32(buf, 16),
    };
  }

  /** Queued signals without dequeuing them: this thread's own, or (shared) the process's. */
  peekSiginfo(shared: boolean): Buffer[] {
    const out: Buffer[] = [];
    const batch = 32;
    const args = Buffer.alloc(16);
    const buf = Buffer.alloc(batch * SIGINFO_SIZE);
    for (;;) {
      writeU64(args, 0, BigInt(out.length));
      writeU32(args, 8, shared ? 1 : 0);
      args.writeInt32LE(batch, 12);
      const n = ptraceBuf(PTRACE.PEEKSIGINFO, this.tid, args, buf, 'PTRACE_PEEKSIGINFO');
      for (let i = 0; i < n; i++) out.push(Buffer.from(buf.subarray(i * SIGINFO_SIZE, (i + 1) * SIGINFO_SIZE)));
      if (n < batch) return out;
    }
  }

  /** The siginfo of the signal this thread is stopped for (si_addr at byte 16 for faults). */
  getSiginfo(): Buffer {
    const buf = Buffer.alloc(SIGINFO_SIZE);
    ptrace(PTRACE.GETSIGINFO, this.tid, 0, buf, 'PTRACE_GETSIGINFO');
    return buf;
  }

  getEventMsg(): number {
    const buf = Buffer.alloc(8);
    ptrace(PTRACE.GETEVENTMSG, this.tid, 0, buf, 'PTRACE_GETEVENTMSG');
    return Number(readU64(buf, 0));
  }

  setOptions(options: number): void {
    ptrace(PTRACE.SETOPTIONS, this.tid, 0, options, 'PTRACE_SETOPTIONS');
  }

  cont(sig = 0): void {
    ptrace(PTRACE.CONT, this.tid, 0, sig, 'PTRACE_CONT');
  }

  /** PTRACE_INTERRUPT: a running (or blocked) thread stops with PTRACE_EVENT_STOP. */
  interrupt(): void {
    ptrace(PTRACE.INTERRUPT, this.tid, 0, 0, 'PTRACE_INTERRUPT');
  }

  /** Resumes until the next syscall entry or exit stop. */
  syscallStep(sig = 0): void {
    ptrace(PTRACE.SYSCALL, this.tid, 0, sig, 'PTRACE_SYSCALL');
  }

  detach(sig = 0): void {
    ptrace(PTRACE.DETACH, this.tid, 0, sig, 'PTRACE_DETACH');
  }

  detachQuietly(): void {
    try {
      this.detach(0);
    } catch (e) {
      if (!(e instanceof KernelError)) throw e;
    }
  }
}

export { USER_REGS_SIZE };
