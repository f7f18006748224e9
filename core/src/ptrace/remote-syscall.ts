import { ERESTART, KSIGACTION_SIZE, MAP, PROT, PTRACE_EVENT, SIG, SYS } from '../kernel/constants';
import { KernelError } from '../kernel/errors';
import { SYSCALLS, type SyscallArg, type SyscallName } from '../kernel/syscall-table';
import { Registers } from '../kernel/regs';
import { WaitStatus } from '../kernel/syscalls';
import { TaskMemory } from './memory';
import { Tracee } from './tracee';
import { UnexpectedStopError } from './errors';
import { checkpoint } from './interrupt';
import { frameRegisters, frameSlotSize, PARKED_SYSCALL, parkingFrame, SIGRETURN_AFTER_SYSCALL } from './park';
import { findExecutableAddress, findSigreturnCode, stackFrameRoom, taskMappings, type SigreturnCodeCache } from './task-places';
import type { MapsEntry } from '../task/proc';
import { isSyscallStop } from './wait';
import { callName, Syscalls } from './remote-calls';
import { resumeFromSyscallExit } from './finish';
import { rebuildRestartBlock } from './restart-block';
import { argsOfCall, CALL_LOOP, CALL_LOOP_OFFSET, callError, callTableOutcome, encodeCallTable, type TableCall, type TableOutcome } from './call-loop';
import { CopyLoop, PARKED_COPY_LOOP, PARKED_COPY_LOOP_OFFSET, type CopyFault } from './copy-loop';

export type { ArgFrom, TableCall, TableOutcome } from './call-loop';
export type { CopyFault } from './copy-loop';
export { finishTogether, resumeFromSyscallExit, type FinishPart } from './finish';
import { batchEnd, beginParkedBatch, dieForTest, PARKED_CALL_LOOP, PARKED_CALL_LOOP_OFFSET } from './parked-batch';

/** `syscall; int3`, then int3 padding. */
const SYSCALL_TRAP = Buffer.from([0x0f, 0x05, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc]);
const ARG_REGS = ['di', 'si', 'dx', 'r10', 'r8', 'r9'] as const;
export const SCRATCH_SIZE = 256 * 1024;
const DATA_OFFSET = 4096;

const PARKED_SYSCALL_OFFSET = 16;
const ALL_SIGNALS = 0xffffffffffffffffn;
const RELEASING_CALLS = new Set<number>([SYS.close, SYS.munmap]);

/** A thread as amber found it: what its parking frame puts back. */
export interface ThreadState {
  regs: Registers;
  xstate: Buffer;
  sigmask: bigint;
}

export interface Scratch {
  base: bigint;
  size: number;
  /** Where the parking frames of a dump's threads start (offset); the data area ends there. */
  framesAt?: number;
  /** Bytes per thread's frame. */
  frameSlot?: number;
}

/** What happened to a task that was stopped inside a syscall, when it is resumed. */
export type RestartMode = 'same-task' | 'new-task';

/**
 * Runs system calls inside a stopped task: registers are pointed at a `syscall; int3` pair in a
 * scratch mapping, the task is continued, and the int3 brings it back with the result in rax.
 * Call arguments that are buffers are staged in the scratch mapping's data area first.
 */
export class RemoteSyscall {
  readonly memory: TaskMemory;
  private cursor = DATA_OFFSET;
  /** pid of the child reported by the last PTRACE_EVENT_FORK/CLONE during a call. */
  lastNewTask: number | undefined;

  /** `memory`: a handle to share (TaskMemory.share), for a thread of an address space amber has open. */
  constructor(
    readonly tracee: Tracee,
    readonly scratch: Scratch,
    private template: Registers,
    memory?: TaskMemory,
  ) {
    this.memory = memory ?? new TaskMemory(tracee.tid);
    this.copyLoop = new CopyLoop({
      pid: tracee.tid,
      tracee,
      memory: this.memory,
      scratch,
      isParked: () => this.parked,
      templateRegisters: () => this.template.clone(),
      resetData: () => this.resetData(),
      getSigaction: (sig) => this.getSigaction(sig),
      setSigaction: (sig, act) => this.setSigaction(sig, act),
      stopAtSyscallExitFromEntry: (what) => this.stopAtSyscallExitFromEntry(what),
    });
  }

  get pid(): number {
    return this.tracee.tid;
  }

  /**
   * Maps a scratch area in a task that has none: borrows an executable page of the task for one
   * injected mmap, then puts the page's bytes back. With `frames` (a dump), room for one parking
   * frame per thread follows the data area, and `own` (the thread as amber found it, its registers
   * those it has now) parks this
   * thread in frame slot 0 at once; if its stack has room below the red zone, the mmap itself
   * already runs parked, from a frame there (whose bytes are put back too). `mapsNow`: the task's
   * mappings, when the caller has just read them of the stopped task.
   */
  static bootstrap(tracee: Tracee, hint = 0n, frames?: { count: number; slot: number }, own?: ThreadState, mapsNow?: MapsEntry[]): RemoteSyscall {
    return RemoteSyscall.beginBootstrap(tracee, hint, frames, own, mapsNow)();
  }

  /**
   * bootstrap in two halves, for together(): this one starts the task on its mmap, the returned
   * one waits for it and makes the area (the mmap's round trip, ~0.4 ms, overlaps other
   * processes'). The borrowed bytes are back once the returned half has run, whatever happens:
   * it must be run before anything else is done to the task.
   */
  static beginBootstrap(tracee: Tracee, hint = 0n, frames?: { count: number; slot: number }, own?: ThreadState, mapsNow?: MapsEntry[]): () => RemoteSyscall {
    const size = SCRATCH_SIZE + (frames ? frames.count * frames.slot : 0);
    const template = own?.regs.clone() ?? tracee.getRegs();
    const maps = mapsNow ?? taskMappings(tracee.tid);
    const codeAddr = findExecutableAddress(tracee.tid, maps);
    const mem = new TaskMemory(tracee.tid);
    const onStack = own && frames ? stackFrameRoom(maps, template.get('sp'), frames.slot) : undefined;
    const code = onStack ? PARKED_SYSCALL : SYSCALL_TRAP;
    let savedCode: Buffer | undefined;
    let savedStack: Buffer | undefined;
    let remote: RemoteSyscall | undefined;
    // its own registers (or its parking place) before the borrowed bytes go back: were amber
    // to die now, the task would not run on from the middle of that page
    const putBack = () => {
      if (!remote?.parked) tracee.setRegs(template);
      if (savedCode) mem.write(codeAddr, savedCode);
      if (savedStack) mem.write(onStack!, savedStack);
      borrowed?.memory.close();
      mem.close();
    };
    let borrowed: RemoteSyscall | undefined;
    let mmapped: () => number;
    const flags = MAP.PRIVATE | MAP.ANONYMOUS | (hint ? MAP.FIXED_NOREPLACE : 0);
    const mmap: TableCall = { name: 'mmap', args: [hint, size, PROT.READ | PROT.WRITE | PROT.EXEC, flags, -1, 0] };
    try {
      savedCode = mem.read(codeAddr, code.length);
      savedStack = onStack ? mem.read(onStack, frames!.slot) : undefined;
      mem.write(codeAddr, code);
      borrowed = new RemoteSyscall(tracee, { base: codeAddr, size: 0 }, template.clone(), mem.share(tracee.tid));
      if (onStack) {
        const { frame, sp } = parkingFrame(onStack, frameRegisters(own!.regs), own!.xstate, own!.sigmask);
        mem.write(onStack, frame.subarray(0, frames!.slot));
        borrowed.template.set('sp', sp);
        borrowed.parkedAt = 0;
        const parked = borrowed.template.clone();
        parked.set('ip', codeAddr + BigInt(SIGRETURN_AFTER_SYSCALL));
        parked.set('origAx', -1n);
        tracee.setRegs(parked);
      }
      // Signals stay blocked while amber injects, so no handler runs on its registers; a
      // parked thread's frame has its own mask.
      if (own) tracee.setSigmask(ALL_SIGNALS);
      mmapped = borrowed.beginCallRaw(SYS.mmap, argsOfCall(mmap) as (number | bigint)[]);
    } catch (e) {
      putBack();
      throw e;
    }
    return () => {
      try {
        const ax = mmapped();
        if (ax < 0 && ax > -4096) throw callError(mmap, argsOfCall(mmap), -ax, tracee.tid);
        const base = BigInt(ax);
        if (frames) {
          // the code in one write: the area is fresh zeros between the pieces anyway
          const code = Buffer.alloc(Math.max(PARKED_COPY_LOOP_OFFSET + PARKED_COPY_LOOP.length, PARKED_CALL_LOOP_OFFSET + PARKED_CALL_LOOP.length));
          SYSCALL_TRAP.copy(code, 0);
          PARKED_SYSCALL.copy(code, PARKED_SYSCALL_OFFSET);
          PARKED_COPY_LOOP.copy(code, PARKED_COPY_LOOP_OFFSET);
          PARKED_CALL_LOOP.copy(code, PARKED_CALL_LOOP_OFFSET);
          mem.write(base, code);
        } else mem.write(base, SYSCALL_TRAP);
        const scratch: Scratch = { base, size, ...(frames ? { framesAt: SCRATCH_SIZE, frameSlot: frames.slot } : {}) };
        remote = new RemoteSyscall(tracee, scratch, template, mem.share(tracee.tid));
        if (own) remote.park(0, own.regs, own.xstate, own.sigmask);
      } finally {
        putBack();
      }
      return remote!;
    };
  }

  /**
   * A task that inherited its parent's scratch area (created by an injected clone), or a thread
   * of a dumped task sharing its leader's. `regs`: its registers, when the caller has just read
   * them of the stopped thread (else they are read here, if it is stopped). `sameMemory`: the
   * RemoteSyscall of a task whose address space this one shares (a thread: CLONE_VM), whose open
   * /proc/PID/mem it then uses too.
   */
  static inherit(tracee: Tracee, scratch: Scratch, stopped = true, regs?: Registers, sameMemory?: RemoteSyscall): RemoteSyscall {
    return new RemoteSyscall(tracee, scratch, regs?.clone() ?? (stopped ? tracee.getRegs() : new Registers()), sameMemory?.memory.share(tracee.tid));
  }

  /** For a task inherited before its first stop (`stopped` false): its registers, now that it is stopped. */
  adoptRegisters(): void {
    this.template = this.tracee.getRegs();
  }

  /**
   * The syscalls of the table (kernel/syscall-table.ts), typed, run in this task: each returns
   * rax, or throws a KernelError naming the call, the pid and the errno name.
   * `remote.sys.with(`fd ${fd}`).fcntl(fd, F.SETFL, flags)` adds what a call is about to its error.
   */
  readonly sys: Syscalls = new Syscalls(this, false);
  /** The same calls returning rax as it is (-errno on failure), for callers that handle the failure. */
  readonly sysRaw: Syscalls = new Syscalls(this, true);

  /**
   * Runs the table's call `name`: a string or Buffer argument (str/in parameters) is staged first,
   * in order. Its error names the string argument when the caller said nothing else.
   */
  invoke(name: SyscallName, args: readonly SyscallArg[], raw: boolean, detail?: string): number {
    const { nr, params } = SYSCALLS[name];
    if (args.length > params.length) throw new Error(`${name} takes ${params.length} arguments, given ${args.length}`);
    const regs = args.map((a) => (typeof a === 'string' ? this.stageString(a) : Buffer.isBuffer(a) ? this.stage(a) : a));
    // what a call is about, when not said: the path or name it was given
    const about = detail ?? args.find((a): a is string => typeof a === 'string');
    return raw ? this.callRaw(nr, regs) : this.call(callName(name, args), nr, regs, about);
  }

  /**
   * Runs calls of the table one after another in one stop of the task (the call loop), as
   * `sys` would one by one: returns each rax; the first that fails throws its KernelError, and
   * the calls after it do not run.
   */
  invokeMany(calls: readonly TableCall[]): number[] {
    const { results, error } = this.runCalls(calls);
    if (error) throw error;
    return results as number[];
  }

  /**
   * invokeMany that reports instead of throwing: each rax (undefined for the calls after the
   * first failure, which do not run) and that failure's error. A parked thread's calls are driven
   * by syscall stops, so there they still go one by one.
   */
  runCalls(calls: readonly TableCall[]): TableOutcome {
    return this.beginCalls(calls)();
  }

  /**
   * runCalls in two halves: this one sets the call loop going and returns the other, which
   * waits for it and reports. Meanwhile amber may start other tasks' loops (tasks that do not
   * share this one's scratch area), so that their stops overlap. Calls that cannot go through
   * the loop have run by the time this returns.
   */
  beginCalls(calls: readonly TableCall[]): () => TableOutcome {
    if (this.parked || calls.length < 2) {
      const outcome = this.runCallsOneByOne(calls);
      return () => outcome;
    }
    checkpoint();
    if (!this.callLoopReady) {
      this.memory.write(this.scratch.base + BigInt(CALL_LOOP_OFFSET), CALL_LOOP);
      this.callLoopReady = true;
    }
    // the arguments' buffers and the table, laid out as stage() would, go in in one write
    const from = (this.cursor + 15) & ~15;
    const parts: { at: number; data: Buffer }[] = [];
    const place = (data: Buffer): bigint => {
      const at = this.claim(data.length);
      parts.push({ at, data });
      return this.scratch.base + BigInt(at);
    };
    const { table, link } = encodeCallTable(calls, (a) => place(typeof a === 'string' ? Buffer.from(a + '\0') : a));
    const at = place(table);
    link(at);
    const image = Buffer.alloc(this.cursor - from);
    for (const p of parts) p.data.copy(image, p.at - from);
    this.memory.write(this.scratch.base + BigInt(from), image);
    const regs = this.template.clone();
    regs.set('ip', this.scratch.base + BigInt(CALL_LOOP_OFFSET));
    regs.set('origAx', -1n);
    regs.set('bx', at);
    regs.set('r12', calls.length);
    this.tracee.setRegs(regs);
    this.tracee.cont(0);
    return () => {
      this.awaitTrap(`injected call loop (${calls[0].name} ...)`);
      return callTableOutcome(calls, this.memory.read(at, table.length), this.pid);
    };
  }

  private runCallsOneByOne(calls: readonly TableCall[]): TableOutcome {
    const results: (number | undefined)[] = [];
    let error: KernelError | undefined;
    for (const c of calls) {
      if (error) {
        results.push(undefined);
        continue;
      }
      const args = argsOfCall(c);
      for (const f of c.argsFrom ?? []) {
        if (f.call >= results.length) throw new Error(`${c.name}: argument ${f.arg} from call ${f.call}, which does not run before it`);
        args[f.arg] = results[f.call]!;
      }
      const r = this.invoke(c.name, args, true, c.detail);
      results.push(r);
      if (r < 0 && r > -4096) error = callError(c, args, -r, this.pid);
    }
    return { results, error };
  }

  private callLoopReady = false;

  /**
   * Independent calls, in one stop of a parked thread when it can be done (parked-batch.ts):
   * every call runs whatever the others return; returns each rax as it is (-errno on failure).
   */
  queryMany(calls: readonly TableCall[]): number[] {
    // one call alone: two syscall stops cost less than a batch's setting up
    if (calls.length < 2) return calls.map((c) => this.invoke(c.name, argsOfCall(c), true, c.detail));
    return this.beginQueryMany(calls)();
  }

  /**
   * queryMany in two halves (see beginParkedBatch), a batch even for one call, for callers that
   * overlap the batches of several processes (together()): the returned half must run before
   * anything else is done to this thread. Calls that cannot go in one stop have run by the time
   * this returns. `status`: the thread's /proc status, when the caller has just read it.
   */
  beginQueryMany(calls: readonly TableCall[], status?: string): () => number[] {
    const end = this.ownMask === undefined || !calls.length ? undefined : batchEnd(this.tracee.tid, this.ownMask, status);
    if (end === undefined) {
      const results = calls.map((c) => this.invoke(c.name, argsOfCall(c), true, c.detail));
      return () => results;
    }
    checkpoint();
    const raw = calls.map((c) => {
      const args = argsOfCall(c);
      if (args.length > SYSCALLS[c.name].params.length) throw new Error(`${c.name} takes ${SYSCALLS[c.name].params.length} arguments, given ${args.length}`);
      return { nr: SYSCALLS[c.name].nr, args: args.map((a) => (typeof a === 'string' ? this.stageString(a) : Buffer.isBuffer(a) ? this.stage(a) : BigInt(a))) };
    });
    const thread = {
      tracee: this.tracee, memory: this.memory, codeAt: this.scratch.base + BigInt(PARKED_CALL_LOOP_OFFSET), ownMask: this.ownMask!,
      startRegs: () => this.template.clone(), parkedRegs: () => this.parkedRegs(), stage: (data: Buffer) => this.stage(data),
    };
    return beginParkedBatch(thread, raw, end);
  }

  /** The thread's own signal mask while it is parked (its frame holds it); undefined: not parked. */
  private ownMask: bigint | undefined;

  /** Runs one syscall; returns rax, or throws a KernelError naming the call and the pid. */
  private call(name: string, nr: number, args: (number | bigint)[], detail?: string): number {
    const r = this.callRaw(nr, args);
    if (r < 0 && r > -4096) throw new KernelError(`${name} (in the task)`, -r, this.pid, detail);
    return r;
  }

  /**
   * Parks this thread (see park.ts): from now on it waits between calls at a sigreturn into a
   * frame of its own state, in frame slot `slot` of the scratch area, and injected calls are
   * driven by syscall stops. `regs`, `xstate`, `sigmask`: the thread as amber found it.
   */
  park(slot: number, regs: Registers, xstate: Buffer, sigmask: bigint): void {
    const { framesAt, frameSlot } = this.scratch;
    if (framesAt === undefined || !frameSlot || framesAt + (slot + 1) * frameSlot > this.scratch.size) {
      throw new Error(`pid ${this.pid}: no parking frame slot ${slot} in the scratch area`);
    }
    const at = this.scratch.base + BigInt(framesAt + slot * frameSlot);
    const { frame, sp } = parkingFrame(at, frameRegisters(regs), xstate, sigmask);
    this.memory.write(at, frame.subarray(0, Math.min(frame.length, frameSlot)));
    this.template.set('sp', sp);
    this.tracee.setRegs(this.parkedRegs());
    this.parkedAt = PARKED_SYSCALL_OFFSET;
    this.ownMask = sigmask;
  }

  /** Registers of a parked thread waiting at its sigreturn. */
  private parkedRegs(): Registers {
    const parked = this.template.clone();
    parked.set('ip', this.scratch.base + BigInt(PARKED_SYSCALL_OFFSET + SIGRETURN_AFTER_SYSCALL));
    parked.set('origAx', -1n);
    return parked;
  }

  /** Offset in the scratch area of the `syscall` a parked thread's calls run from; undefined: not parked. */
  private parkedAt: number | undefined;

  private get parked(): boolean {
    return this.parkedAt !== undefined;
  }

  /**
   * Waits for the int3 after the injected code of a task resumed at the registers just set. A
   * fork or clone the code makes is noted (lastNewTask) on the way.
   */
  private awaitTrap(what: string): void {
    for (;;) {
      const status = this.tracee.wait(what);
      const event = WaitStatus.event(status);
      if (event === PTRACE_EVENT.FORK || event === PTRACE_EVENT.CLONE || event === PTRACE_EVENT.VFORK) {
        this.lastNewTask = this.tracee.getEventMsg();
        this.tracee.cont(0);
        continue;
      }
      // A job-control stop or a late interrupt trap of a stopped task, before our code ran:
      // the registers are ours, so going on runs it.
      if (event === PTRACE_EVENT.STOP) {
        this.tracee.cont(0);
        continue;
      }
      if (WaitStatus.stopSig(status) !== SIG.TRAP || event !== 0) throw new UnexpectedStopError(this.pid, status, `SIGTRAP after ${what}`);
      return;
    }
  }

  /** Runs one syscall and returns the raw rax: -errno on failure (`sysRaw` outside this class). */
  private callRaw(nr: number, args: (number | bigint)[]): number {
    return this.beginCallRaw(nr, args)();
  }

  /** callRaw in two halves: the task is started on the call; the returned half waits for it and gives rax. */
  private beginCallRaw(nr: number, args: (number | bigint)[]): () => number {
    // A call that releases what an earlier one gave the task (the close in a finally) is never
    // where an interruption stops: the task must not keep it.
    if (!RELEASING_CALLS.has(nr)) checkpoint();
    this.tracee.setRegs(this.syscallRegs(nr, args));
    if (this.parked) {
      this.tracee.syscallStep(0);
      return () => this.awaitParkedCall(nr);
    }
    this.tracee.cont(0);
    return () => {
      this.awaitTrap(`injected syscall ${nr}`);
      return Number(this.tracee.getRegs().getSigned('ax'));
    };
  }

  /** A parked thread's call, started by PTRACE_SYSCALL: on to the entry stop, then to the exit stop, where it stays. */
  private awaitParkedCall(nr: number): number {
    let atEntry = false;
    for (;;) {
      const status = this.tracee.wait(`injected syscall ${nr}`);
      const event = WaitStatus.event(status);
      if (event === PTRACE_EVENT.FORK || event === PTRACE_EVENT.CLONE || event === PTRACE_EVENT.VFORK) {
        this.lastNewTask = this.tracee.getEventMsg();
      } else if (event !== PTRACE_EVENT.STOP) {
        if (!isSyscallStop(status)) throw new UnexpectedStopError(this.pid, status, `a syscall stop of injected syscall ${nr}`);
        if (atEntry) break;
        atEntry = true;
      }
      this.tracee.syscallStep(0);
    }
    return Number(this.tracee.getRegs().getSigned('ax'));
  }

  /**
   * Runs `body`, in which copyInTask may be called, with the fault signals set so that a fault in
   * the copy only stops the task for amber (copy-loop.ts).
   */
  withCopyFaultsStopping<T>(body: () => Promise<T>): Promise<T> {
    return this.copyLoop.withFaultsStopping(body);
  }

  /**
   * Runs the copy loop over `count` triples staged at `list`, inside withCopyFaultsStopping().
   * Returns undefined when all were copied, or the fault that stopped it (SIGSEGV, SIGBUS).
   */
  copyInTask(list: bigint, count: number): CopyFault | undefined {
    return this.copyLoop.copy(list, count);
  }

  private readonly copyLoop: CopyLoop;

  /** The task's struct kernel_sigaction for sig (handler, flags, restorer, mask); staged after what is staged. */
  getSigaction(sig: number): Buffer {
    const at = this.reserve(KSIGACTION_SIZE);
    this.sys.with(`signal ${sig}`).rt_sigaction(sig, 0, at, 8);
    return this.memory.read(at, KSIGACTION_SIZE);
  }

  /** Sets the task's struct kernel_sigaction for sig; staged after what is staged. */
  setSigaction(sig: number, act: Buffer, what = `signal ${sig}`): void {
    this.sys.with(what).rt_sigaction(sig, act, 0, 8);
  }

  /** Copies data into the scratch area; returns its address in the task. Reset with resetData(). */
  stage(data: Buffer): bigint {
    const addr = this.scratch.base + BigInt(this.claim(data.length));
    this.memory.write(addr, data);
    return addr;
  }

  /** The offset of the next n bytes of the data area, now taken. */
  private claim(n: number): number {
    const aligned = (this.cursor + 15) & ~15;
    if (aligned + n > this.dataEnd) {
      throw new Error(`scratch area of pid ${this.pid} is full (${n} bytes wanted)`);
    }
    this.cursor = aligned + n;
    return aligned;
  }

  stageString(s: string): bigint {
    return this.stage(Buffer.from(s + '\0'));
  }

  /** Reserves n bytes of scratch for the kernel to fill. */
  reserve(n: number): bigint {
    return this.stage(Buffer.alloc(n));
  }

  /** reserve() without clearing the bytes first (a write to the task): for calls that fill all n whenever they succeed. */
  reserveUncleared(n: number): bigint {
    return this.scratch.base + BigInt(this.claim(n));
  }

  /** Bytes left in the data area. */
  get dataRoom(): number {
    return this.dataEnd - ((this.cursor + 15) & ~15);
  }

  private get dataEnd(): number {
    return this.scratch.framesAt ?? this.scratch.size;
  }

  resetData(): void {
    this.cursor = DATA_OFFSET;
  }

  /**
   * Leaves a thread that shares the scratch area with others at a syscall-exit stop with `final`
   * registers, without unmapping anything (its leader's finish() does that, last).
   */
  finishThread(final: Registers, mode: RestartMode, sigmask?: bigint): void {
    ({ regs: final, mode } = mode === 'new-task' ? rebuildRestartBlock(this, final) : { regs: final, mode });
    this.stopAtSyscallExit(SYS.getpid, [], 'parking a thread');
    // its own mask while still parked (a sigreturn would set it too), then its own registers
    if (sigmask !== undefined) this.tracee.setSigmask(sigmask);
    this.tracee.setRegs(resumeFromSyscallExit(final, mode));
    this.memory.close();
  }

  /** From a syscall-entry stop to its exit stop. */
  private stopAtSyscallExitFromEntry(what: string): void {
    for (;;) {
      this.tracee.syscallStep(0);
      const status = this.tracee.wait(`${what} (exit)`);
      if (WaitStatus.event(status) === PTRACE_EVENT.STOP) continue;
      if (!isSyscallStop(status)) throw new UnexpectedStopError(this.pid, status, `syscall-exit stop of ${what}`);
      return;
    }
  }

  /** Registers that make the task run syscall nr with args at the scratch area's `syscall`. */
  private syscallRegs(nr: number, args: (number | bigint)[]): Registers {
    const regs = this.template.clone();
    regs.set('ip', this.scratch.base + BigInt(this.parkedAt ?? 0));
    regs.set('ax', nr);
    // Without orig_rax = -1 the kernel's syscall-restart logic would rewrite rax and rip when the
    // task was stopped inside an interrupted syscall.
    regs.set('origAx', -1n);
    args.forEach((a, i) => regs.set(ARG_REGS[i], a));
    return regs;
  }

  private stopAtSyscallExit(nr: number, args: (number | bigint)[], what: string, atEntry?: () => void): bigint {
    this.tracee.setRegs(this.syscallRegs(nr, args));
    for (const phase of ['entry', 'exit']) {
      if (phase === 'exit') atEntry?.();
      this.tracee.syscallStep();
      for (;;) {
        const status = this.tracee.wait(`${what} (${phase})`);
        if (WaitStatus.event(status) === PTRACE_EVENT.STOP) {
          this.tracee.syscallStep();
          continue;
        }
        if (!isSyscallStop(status)) throw new UnexpectedStopError(this.pid, status, `syscall stop of ${what}`);
        break;
      }
    }
    return this.tracee.getRegs().getSigned('ax');
  }

  /** finishTogether's steps: the last call (munmap of the scratch area, or a getpid) set up and resumed to its entry. */
  enterLastCall(unmaps: boolean): void {
    this.tracee.setRegs(unmaps ? this.syscallRegs(SYS.munmap, [this.scratch.base, this.scratch.size]) : this.syscallRegs(SYS.getpid, []));
    this.tracee.syscallStep();
  }

  /** Waits for the last call's entry or exit stop. */
  awaitLastCallStop(phase: 'entry' | 'exit'): void {
    this.awaitSyscallStop(`last injected call (${phase})`);
  }

  /** Waits for the thread's next syscall stop (entry or exit), resuming it through job-control and interrupt stops. */
  private awaitSyscallStop(what: string): void {
    for (;;) {
      const status = this.tracee.wait(what);
      if (WaitStatus.event(status) === PTRACE_EVENT.STOP) {
        this.tracee.syscallStep();
        continue;
      }
      if (!isSyscallStop(status)) throw new UnexpectedStopError(this.pid, status, `syscall stop of ${what}`);
      return;
    }
  }

  /** At the last call's exit stop: the task's own registers (and mask), to resume with. */
  leaveFromLastCall(unmapped: boolean, final: Registers, mode: RestartMode, sigmask?: bigint): void {
    if (unmapped) {
      const result = this.tracee.getRegs().getSigned('ax');
      if (result < 0n) throw new KernelError('munmap of scratch (in the task)', Number(-result), this.pid);
    }
    if (sigmask !== undefined) this.tracee.setSigmask(sigmask);
    this.tracee.setRegs(resumeFromSyscallExit(final, mode));
    this.memory.close();
  }

  /**
   * finish() of a parked thread of a dump, without its window (amber dying after the munmap,
   * before the task has its registers back, left it running on in unmapped code: SIGSEGV). The
   * thread is first left at a sigreturn code of its own program (findSigreturnCode) with a frame
   * of its own state on its own stack, below the red zone: from there, were amber to die, it puts
   * itself back as from its parking frame. The sigreturn's entry stop is turned into the munmap,
   * returning to that same code; at the munmap's exit stop it gets its own registers and mask, as
   * finish() leaves it, and its stack bytes back. `own`: the thread as amber found it. False, with
   * nothing done: no such code or no room on its stack (then finish()).
   */
  finishLanded(own: { regs: Registers; xstate: Buffer; sigmask: bigint }, codes: SigreturnCodeCache): boolean {
    if (!this.parked) return false;
    const { sigmask } = own;
    const maps = taskMappings(this.pid);
    const code = findSigreturnCode(this.pid, maps, (at, len) => this.memory.read(at, len), codes);
    const ownSp = own.regs.get('sp');
    const room = code === undefined ? undefined : stackFrameRoom(maps, ownSp, frameSlotSize(own.xstate.length));
    if (code === undefined || room === undefined) return false;
    const { frame, sp } = parkingFrame(room, frameRegisters(own.regs), own.xstate, sigmask);
    const saved = this.memory.read(room, frame.length);
    this.memory.write(room, frame);
    const landing = this.template.clone();
    landing.set('ip', code);
    landing.set('sp', sp);
    landing.set('origAx', -1n);
    this.tracee.setRegs(landing);
    try {
      this.unmapFromLanding(code, sigmask);
    } catch (e) {
      // left where it puts itself back: at an entry stop, orig_rax -1 skips the call
      try {
        this.tracee.setRegs(landing);
      } catch {
        // gone
      }
      throw e;
    }
    this.tracee.setRegs(resumeFromSyscallExit(own.regs, 'same-task'));
    // below its stack pointer, the bytes it had there
    this.memory.write(room, saved);
    this.memory.close();
    return true;
  }

  /** finishLanded's middle: the thread at its sigreturn code, the scratch area unmapped from there. */
  private unmapFromLanding(code: bigint, sigmask: bigint): void {
    dieForTest('die:finish-landed');
    this.stopAtSyscallStop('its sigreturn (entry)');
    const entry = this.tracee.getRegs();
    if (entry.get('origAx') !== BigInt(SYS.rt_sigreturn)) throw new UnexpectedStopError(this.pid, 0, `rt_sigreturn at 0x${code.toString(16)}, found syscall ${entry.getSigned('origAx')}`);
    // the sigreturn becomes the munmap, which returns to the sigreturn code again
    entry.set('origAx', BigInt(SYS.munmap));
    entry.set('di', this.scratch.base);
    entry.set('si', BigInt(this.scratch.size));
    entry.set('ip', code);
    this.tracee.setRegs(entry);
    this.tracee.setSigmask(sigmask);
    dieForTest('die:finish-unmapping');
    this.stopAtSyscallStop('munmap of the scratch area (exit)');
    const result = this.tracee.getRegs().getSigned('ax');
    if (result < 0n) throw new KernelError('munmap of scratch (in the task)', Number(-result), this.pid);
    dieForTest('die:finish-unmapped');
  }

  /** Resumes to the next syscall stop (entry or exit). */
  private stopAtSyscallStop(what: string): void {
    this.tracee.syscallStep();
    this.awaitSyscallStop(what);
  }

  /**
   * Unmaps the scratch area and leaves the task at the munmap's syscall-exit stop with `final`
   * registers. The int3 after the syscall would be gone with the page, so the stop comes from
   * PTRACE_SYSCALL instead.
   */
  finish(final: Registers, mode: RestartMode, sigmask?: bigint): void {
    // With sigmask: the task's own mask is set at the munmap's entry stop. Signals it lets through
    // are handled only after the exit stop, by then in its own registers; and it is never left
    // with its own registers but amber's mask.
    ({ regs: final, mode } = mode === 'new-task' ? rebuildRestartBlock(this, final) : { regs: final, mode });
    const setMask = sigmask === undefined ? undefined : () => this.tracee.setSigmask(sigmask);
    const result = this.stopAtSyscallExit(SYS.munmap, [this.scratch.base, this.scratch.size], 'munmap of the scratch area', setMask);
    if (result < 0n) throw new KernelError('munmap of scratch (in the task)', Number(-result), this.pid);
    this.tracee.setRegs(resumeFromSyscallExit(final, mode));
    this.memory.close();
  }
}
