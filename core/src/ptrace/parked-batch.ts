import { readFileSync } from 'node:fs';
import { PTRACE_EVENT, SIG, SYS } from '../kernel/constants';
import type { Registers } from '../kernel/regs';
import { WaitStatus } from '../kernel/syscalls';
import { UnexpectedStopError } from './errors';
import type { TaskMemory } from './memory';
import type { Tracee } from './tracee';
import { i64Words, u64Words } from '../kernel/bytes';

/*
 * Many injected calls for one stop of a parked thread (park.ts).
 *
 * A parked thread's calls are driven by PTRACE_SYSCALL, two stops per call, because a stop at an
 * int3 would kill the thread with SIGTRAP were amber to die there. A batch instead runs a call
 * loop under PTRACE_CONT, with no stop at all until its last call: tgkill(self, S), where S is a
 * signal that, delivered to this thread, changes nothing — one the process ignores (SIG_IGN, or
 * SIG_DFL of SIGURG, SIGWINCH, SIGCHLD) that the thread's own mask lets through and that is not
 * pending already. While traced, even an ignored signal stops the thread (signal-delivery-stop),
 * and amber discards it. With amber gone, the kernel drops an ignored unblocked signal when it is
 * sent, the loop ends and falls into the parking sigreturn: the thread is back as it was.
 *
 * After the batch the thread waits at that signal-delivery-stop, its registers on the parking
 * sigreturn, all signals blocked: amber's death now delivers S, which is blocked and so stays
 * pending until the sigreturn puts the thread's own mask back, and then it is ignored.
 */

/**
 * The call loop over a table of {nr, six args, result} u64 entries (rbx: the table, r12: how
 * many); each result goes into its entry, every call runs; then the parking sigreturn.
 *   top: test r12,r12; jz done; mov rax,[rbx]; mov rdi,[rbx+8]; mov rsi,[rbx+16]; mov rdx,[rbx+24]
 *        mov r10,[rbx+32]; mov r8,[rbx+40]; mov r9,[rbx+48]; syscall; mov [rbx+56],rax
 *        add rbx,64; dec r12; jmp top
 *   done: mov eax, __NR_rt_sigreturn; syscall
 */
export const PARKED_CALL_LOOP = Buffer.from([
  0x4d, 0x85, 0xe4, 0x74, 0x2a, 0x48, 0x8b, 0x03, 0x48, 0x8b, 0x7b, 0x08, 0x48, 0x8b, 0x73, 0x10,
  0x48, 0x8b, 0x53, 0x18, 0x4c, 0x8b, 0x53, 0x20, 0x4c, 0x8b, 0x43, 0x28, 0x4c, 0x8b, 0x4b, 0x30,
  0x0f, 0x05, 0x48, 0x89, 0x43, 0x38, 0x48, 0x83, 0xc3, 0x40, 0x49, 0xff, 0xcc, 0xeb, 0xd1, 0xb8,
  0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05,
]);
export const PARKED_CALL_LOOP_OFFSET = 512;
/** Where the loop's `syscall` returns to. */
const AFTER_LOOP_SYSCALL = 0x22;
const ENTRY = 64;
const ALL_SIGNALS = 0xffffffffffffffffn;
/** Ignored when their action is SIG_DFL (SIGCONT is too, but it also resumes a stopped process). */
const DEFAULT_IGNORED = [SIG.URG, SIG.WINCH, SIG.CHLD];

const bit = (sig: number) => 1n << BigInt(sig - 1);

/** A call of a batch: the syscall number and its arguments, already in registers' form. */
export interface RawCall {
  nr: number;
  args: readonly bigint[];
}

/** What a batch needs of the thread's RemoteSyscall. */
export interface ParkedThread {
  readonly tracee: Tracee;
  readonly memory: TaskMemory;
  readonly codeAt: bigint;
  /** The thread's own mask, which its parking frame holds. */
  readonly ownMask: bigint;
  /** Registers injected code starts from (rsp on the parking frame). */
  startRegs(): Registers;
  /** Registers of a thread waiting parked, at its sigreturn. */
  parkedRegs(): Registers;
  stage(data: Buffer): bigint;
}

/** How a batch ends in thread tid: the signal it stops with and its process. */
export interface BatchEnd {
  signal: number;
  tgid: number;
}

/**
 * The signal a batch may stop thread tid with, or undefined when there is none: every candidate
 * has a handler, is blocked by the thread, or is pending. `status`: the thread's
 * /proc/TID/task/TID/status, when the caller has just read it (the thread is stopped).
 */
export function batchEnd(tid: number, ownMask: bigint, status = readFileSync(`/proc/${tid}/task/${tid}/status`, 'utf8')): BatchEnd | undefined {
  const tgid = Number(/^Tgid:\s*(\d+)$/m.exec(status)?.[1]);
  const mask = (key: string) => BigInt('0x' + (new RegExp(`^${key}:\\s*([0-9a-f]+)$`, 'm').exec(status)?.[1] ?? 'ffffffffffffffff'));
  const [ignored, caught] = [mask('SigIgn'), mask('SigCgt')];
  const unusable = caught | ownMask | mask('SigPnd') | mask('ShdPnd') | bit(SIG.KILL) | bit(SIG.STOP) | bit(SIG.CONT);
  const usable = (sig: number) => !(unusable & bit(sig));
  const signal = DEFAULT_IGNORED.find(usable) ?? Array.from({ length: 64 }, (_, i) => i + 1).find((sig) => ignored & bit(sig) && usable(sig));
  return signal === undefined || !tgid ? undefined : { signal, tgid };
}

/**
 * Runs `calls` in the parked thread in one stop, ending as `end` says (batchEnd), in two halves:
 * this one sets the loop going, the one it returns waits for its end, parks the thread again and
 * returns each call's rax as is (-errno on failure). Meanwhile amber may start the batches of threads that share no
 * scratch area with this one, so that their stops overlap. Until the second half has run the
 * thread is running: it must be called (and its error, if any, taken) before anything else is
 * done to the thread. Were amber to die in between, the loop ends in the parking sigreturn, as
 * ever.
 */
export function beginParkedBatch(thread: ParkedThread, calls: readonly RawCall[], { signal, tgid }: BatchEnd): () => number[] {
  const { tracee } = thread;
  const table = Buffer.alloc((calls.length + 1) * ENTRY);
  const entries: RawCall[] = [...calls, { nr: SYS.tgkill, args: [BigInt(tgid), BigInt(tracee.tid), BigInt(signal)] }];
  const words = u64Words(table);
  for (let i = 0; i < entries.length; i++) {
    const { nr, args } = entries[i];
    const w = (i * ENTRY) / 8;
    words[w] = BigInt(nr);
    for (let j = 0; j < args.length; j++) words[w + 1 + j] = args[j];
  }
  const at = thread.stage(table);
  const regs = thread.startRegs();
  regs.set('ip', thread.codeAt);
  regs.set('origAx', -1n);
  regs.set('bx', at);
  regs.set('r12', entries.length);
  tracee.setSigmask(ALL_SIGNALS & ~bit(signal));
  tracee.setRegs(regs);
  tracee.cont(0);
  dieForTest('die:batch-running');
  return () => awaitParkedBatch(thread, calls.length, at, table.length, signal);
}

function awaitParkedBatch(thread: ParkedThread, count: number, at: bigint, tableLength: number, signal: number): number[] {
  const { tracee } = thread;
  for (;;) {
    const status = tracee.wait('an injected call batch');
    const event = WaitStatus.event(status);
    // a job-control stop or a late interrupt trap before the loop ran: going on runs it
    if (event === PTRACE_EVENT.STOP) {
      tracee.cont(0);
      continue;
    }
    if (event !== 0 || WaitStatus.stopSig(status) !== signal) throw new UnexpectedStopError(tracee.tid, status, `signal ${signal} at the end of an injected call batch`);
    const now = tracee.getRegs();
    if (now.get('ip') === thread.codeAt + BigInt(AFTER_LOOP_SYSCALL) && now.get('r12') === 1n && now.get('origAx') === BigInt(SYS.tgkill)) break;
    // the same signal from someone else, before the loop's own: ignored, as it would have been
    tracee.cont(0);
  }
  dieForTest('die:batch-stopped');
  const done = thread.memory.read(at, tableLength);
  tracee.setRegs(thread.parkedRegs());
  tracee.setSigmask(ALL_SIGNALS);
  dieForTest('die:batch-parked');
  const results = i64Words(done);
  return Array.from({ length: count }, (_, i) => Number(results[(i * ENTRY + 56) / 8]));
}

/** Test hook: AMBER_FAULT=die:batch-running|stopped|parked (and finishLanded's die:finish-*) SIGKILLs amber there, to show the thread puts itself back. */
export function dieForTest(point: string): void {
  if (process.env.AMBER_FAULT === point) process.kill(process.pid, 'SIGKILL');
}
