import { PTRACE_EVENT, SIG, SYS } from '../kernel/constants';
import { Registers } from '../kernel/regs';
import { WaitStatus } from '../kernel/syscalls';
import { UnexpectedStopError } from './errors';
import { checkpoint, deferInterrupts } from './interrupt';
import { PARKED_SYSCALL } from './park';
import type { TaskMemory } from './memory';
import type { Tracee } from './tracee';
import { isSyscallStop } from './wait';

/**
 * A copy loop, run by the task itself over a list of {dst, src, len} triples (rbx: the list,
 * r12: how many), then int3. Where memory is the thing to move, one `rep movsb` per run beats a
 * syscall: no file write path, and the pages are mapped where they go.
 *   top: test r12,r12; jz done; mov rdi,[rbx]; mov rsi,[rbx+8]; mov rcx,[rbx+16]; rep movsb
 *        add rbx,24; dec r12; jmp top
 *   done: int3
 */
const COPY_LOOP = Buffer.from([
  0x4d, 0x85, 0xe4, 0x74, 0x16, 0x48, 0x8b, 0x3b, 0x48, 0x8b, 0x73, 0x08, 0x48, 0x8b, 0x4b, 0x10,
  0xf3, 0xa4, 0x48, 0x83, 0xc3, 0x18, 0x49, 0xff, 0xcc, 0xeb, 0xe5, 0xcc,
]);
const COPY_LOOP_OFFSET = 64;
/** The copy loop of a parked thread: it ends in getpid (a syscall stop for amber) and the sigreturn. */
export const PARKED_COPY_LOOP = Buffer.concat([COPY_LOOP.subarray(0, COPY_LOOP.length - 1), Buffer.from([0xb8, SYS.getpid, 0, 0, 0]), PARKED_SYSCALL]);
/** Where a dump's scratch area has the parked copy loop (written when the area is made). */
export const PARKED_COPY_LOOP_OFFSET = 128;
const EFLAGS_DF = 1n << 10n;
const FAULT_SIGNALS: number[] = [SIG.SEGV, SIG.BUS];
const SIG_DFL = 0n;
const SIG_IGN = 1n;

/** A copy that stopped on a fault: which signal, at which address, after how many triples. */
export interface CopyFault {
  signal: number;
  address: bigint;
  done: number;
}

/** What the copy loop needs of the task's RemoteSyscall. */
export interface CopyLoopHost {
  readonly pid: number;
  readonly tracee: Tracee;
  readonly memory: TaskMemory;
  readonly scratch: { base: bigint };
  /** Parked threads are driven by syscall stops (park.ts). */
  isParked(): boolean;
  /** The task's registers for injected code, as a copy. */
  templateRegisters(): Registers;
  resetData(): void;
  getSigaction(sig: number): Buffer;
  setSigaction(sig: number, act: Buffer): void;
  /** From a syscall-entry stop to its exit stop. */
  stopAtSyscallExitFromEntry(what: string): void;
}

/** The copy loop of one task (RemoteSyscall.withCopyFaultsStopping / copyInTask). */
export class CopyLoop {
  private ready = false;
  private copying = false;

  constructor(private readonly host: CopyLoopHost) {}

  /**
   * Runs `body`, in which copyInTask may be called, with the fault signals set so that a fault in
   * the copy only stops the task for amber. A fault signal that is blocked or ignored is forced:
   * the kernel would unblock it and reset the task's handler to SIG_DFL for good. Unblocked and
   * not ignored, it stops the task with its handler untouched. So, for the while: unblocked, and
   * un-ignored; then as they were.
   */
  async withFaultsStopping<T>(body: () => Promise<T>): Promise<T> {
    const host = this.host;
    if (!this.ready) {
      host.memory.write(host.scratch.base + BigInt(COPY_LOOP_OFFSET), COPY_LOOP);
      this.ready = true;
    }
    const mask = host.tracee.getSigmask();
    host.resetData();
    const ignored = FAULT_SIGNALS.filter((sig) => host.getSigaction(sig).readBigUInt64LE(0) === SIG_IGN);
    this.copying = true;
    try {
      host.tracee.setSigmask(mask & ~FAULT_SIGNALS.reduce((m, sig) => m | (1n << BigInt(sig - 1)), 0n));
      for (const sig of ignored) this.setHandler(sig, SIG_DFL);
      return await body();
    } finally {
      this.copying = false;
      host.resetData();
      deferInterrupts(() => {
        for (const sig of ignored) this.setHandler(sig, SIG_IGN);
      });
      host.tracee.setSigmask(mask);
    }
  }

  /**
   * Runs the copy loop over `count` triples staged at `list`, inside withFaultsStopping().
   * Returns undefined when all were copied, or the fault that stopped it (SIGSEGV, SIGBUS): the
   * signal is never delivered, the next call the task makes discards it.
   */
  copy(list: bigint, count: number): CopyFault | undefined {
    const host = this.host;
    if (!this.copying) throw new Error(`pid ${host.pid}: copyInTask outside withCopyFaultsStopping`);
    checkpoint();
    const parked = host.isParked();
    const regs = host.templateRegisters();
    regs.set('ip', host.scratch.base + BigInt(parked ? PARKED_COPY_LOOP_OFFSET : COPY_LOOP_OFFSET));
    regs.set('origAx', -1n);
    regs.set('bx', list);
    regs.set('r12', count);
    regs.set('flags', regs.get('flags') & ~EFLAGS_DF);
    host.tracee.setRegs(regs);
    const resume = () => (parked ? host.tracee.syscallStep(0) : host.tracee.cont(0));
    resume();
    for (;;) {
      const status = host.tracee.wait('injected copy');
      const event = WaitStatus.event(status);
      if (event === PTRACE_EVENT.STOP) {
        resume();
        continue;
      }
      const sig = WaitStatus.stopSig(status);
      if (parked ? isSyscallStop(status) : sig === SIG.TRAP && event === 0) {
        // parked: that was the getpid's entry; its exit is where the thread waits
        if (parked) host.stopAtSyscallExitFromEntry('injected copy');
        return undefined;
      }
      if (event === 0 && FAULT_SIGNALS.includes(sig)) {
        const after = host.tracee.getRegs();
        const done = count - Number(after.get('r12'));
        return { signal: sig, address: host.tracee.getSiginfo().readBigUInt64LE(16), done };
      }
      throw new UnexpectedStopError(host.pid, status, 'SIGTRAP after an injected copy');
    }
  }

  /** Sets just the handler of sig, keeping its flags, restorer and mask. */
  private setHandler(sig: number, handler: bigint): void {
    const act = this.host.getSigaction(sig);
    act.writeBigUInt64LE(handler, 0);
    this.host.setSigaction(sig, act);
  }
}
