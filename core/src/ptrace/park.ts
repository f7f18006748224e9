import { ERESTART } from '../kernel/constants';
import { Registers } from '../kernel/regs';
import { readU64, writeU64 } from '../kernel/bytes';

/*
 * Parking a dumped thread so that amber's death does not kill it.
 *
 * A dump seizes its tasks without PTRACE_O_EXITKILL: if amber dies (SIGKILL), the kernel detaches
 * every tracee and it runs on from whatever its registers say. Left at an injection's int3 it
 * would die of SIGTRAP. So between injections every thread of a dumped task is left at
 *
 *     mov eax, __NR_rt_sigreturn; syscall
 *
 * in the scratch area, with rsp pointing just past a signal frame (struct rt_sigframe) that
 * holds the thread's own registers, FPU/vector state and signal mask, as the kernel would have
 * written them to deliver a signal. Injected syscalls run from the `syscall` just before that
 * sequence, driven by PTRACE_SYSCALL (a stop at entry and exit) instead of an int3, so a call
 * amber does not live to see end also falls through into the sigreturn. While amber lives it
 * never lets a thread get there: the undo sets the registers itself.
 *
 * Two things a sigreturn does that a signal return would not need here:
 * - uc_stack is applied with sigaltstack(); a frame with ss_flags = SS_ONSTACK|SS_DISABLE (not a
 *   valid mode) makes that call fail, which rt_sigreturn ignores: the thread keeps its own
 *   alternate stack, which amber never reads for this.
 * - it disables syscall restart (orig_ax = -1) and sets the restart block to return EINTR, so
 *   the frame holds the outcome of a syscall the thread was stopped in (frameRegisters): one that
 *   restarts whatever happens (-ERESTARTSYS, -ERESTARTNOINTR) is re-entered (rax = orig_rax, rip
 *   back onto its syscall); one that returns EINTR when a handler runs (-ERESTARTNOHAND: pause,
 *   sigsuspend, poll, select) returns EINTR, since a signal that came while the thread waited to
 *   run the sigreturn is handled right after it, and re-entering the wait would miss it; a
 *   restart_syscall kind (nanosleep, poll with a timeout) sees EINTR too.
 */

/** Bytes of struct rt_sigframe up to its siginfo, and where the FPU state goes after it (64-aligned). */
const UCONTEXT = 8;
const MCONTEXT = UCONTEXT + 40;
const SIGMASK = UCONTEXT + 296;
const FPSTATE = 1024;
const FP_XSTATE_MAGIC1 = 0x46505853;
const FP_XSTATE_MAGIC2 = 0x46505845;
const SW_RESERVED = 464;
const UC_FP_XSTATE = 1;
const XSAVE_HEADER_END = 576;
/** xstate_bv, the first word of the XSAVE header after the legacy area. */
const XSTATE_BV = 512;
/** XFEATURE_XTILE_DATA (AMX tiles, 8 KiB): the one component the kernel enables per task, on request. */
const XTILE_DATA = 1n << 18n;
const XTILE_DATA_SIZE = 8192;
const UC_SIGCONTEXT_SS = 2;
const UC_STRICT_RESTORE_SS = 4;
const SS_INVALID_MODE = 3;

/**
 * What of the XSAVE area a sigreturn of this thread may name: its size and xfeatures.
 * PTRACE_GETREGSET gives the largest area the CPU has, AMX tile data (the last 8 KiB) included,
 * and XCR0 in sw_reserved; but a task that never asked for the tiles (ARCH_REQ_XCOMP_PERM) has
 * them disabled, its area is that much smaller, and a frame claiming more is taken as a legacy
 * one: only x87/SSE come back, the upper halves of the ymm and zmm registers are lost (seen on a
 * CPU with AMX). A task whose tiles are in use has asked for them, so then the whole area is named.
 */
function frameXstate(xstate: Buffer): { size: number; xfeatures: bigint } {
  const xcr0 = readU64(xstate, SW_RESERVED);
  const tilesUnused = xcr0 & XTILE_DATA && !(readU64(xstate, XSTATE_BV) & XTILE_DATA) && xstate.length >= XSAVE_HEADER_END + XTILE_DATA_SIZE;
  return tilesUnused ? { size: xstate.length - XTILE_DATA_SIZE, xfeatures: xcr0 & ~XTILE_DATA } : { size: xstate.length, xfeatures: xcr0 };
}

/** Offset of `mov eax, 15; syscall` after the `syscall` injections run from. */
export const SIGRETURN_AFTER_SYSCALL = 2;
/** `syscall; mov eax, __NR_rt_sigreturn; syscall` */
export const PARKED_SYSCALL = Buffer.from([0x0f, 0x05, 0xb8, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05]);

/** sigcontext's general registers, in its order. */
const SIGCONTEXT_REGS = [
  'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'di', 'si', 'bp', 'bx', 'dx', 'ax', 'cx', 'sp', 'ip', 'flags',
] as const;

/** sigcontext: 18 registers, 4 selectors, err, trapno, oldmask, cr2, then the fpstate pointer. */
const SC_FPSTATE = MCONTEXT + 18 * 8 + 8 + 4 * 8;

/** Room one thread's frame takes in the scratch area, for xstate of this size. */
export function frameSlotSize(xstateLength: number): number {
  return Math.ceil((FPSTATE + xstateLength + 4) / 4096) * 4096;
}

/**
 * The signal frame that puts a thread back as `regs` (already adjusted for a syscall restart),
 * `xstate` (PTRACE_GETREGSET NT_X86_XSTATE, standard format) and `sigmask`, built for address
 * `at`. Returns the frame and the rsp the sigreturn must see.
 */
export function parkingFrame(at: bigint, regs: Registers, xstate: Buffer, sigmask: bigint): { frame: Buffer; sp: bigint } {
  const frame = Buffer.alloc(frameSlotSize(xstate.length));
  // the XSAVE area with its header (xstate_bv): a signal frame's full form; else the legacy 512 bytes
  const withXstate = xstate.length >= XSAVE_HEADER_END;
  writeU64(frame, UCONTEXT, BigInt(UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS | (withXstate ? UC_FP_XSTATE : 0)));
  frame.writeInt32LE(SS_INVALID_MODE, UCONTEXT + 24); // uc_stack.ss_flags
  SIGCONTEXT_REGS.forEach((name, i) => writeU64(frame, MCONTEXT + i * 8, regs.get(name)));
  const selectors = MCONTEXT + SIGCONTEXT_REGS.length * 8;
  frame.writeUInt16LE(Number(regs.get('cs')), selectors);
  frame.writeUInt16LE(Number(regs.get('gs')), selectors + 2);
  frame.writeUInt16LE(Number(regs.get('fs')), selectors + 4);
  frame.writeUInt16LE(Number(regs.get('ss')), selectors + 6);
  const { size, xfeatures } = withXstate ? frameXstate(xstate) : { size: 512, xfeatures: 0n };
  if (xstate.length >= 512) {
    xstate.copy(frame, FPSTATE, 0, size);
    writeU64(frame, SC_FPSTATE, at + BigInt(FPSTATE));
  }
  if (withXstate) {
    // a signal frame has struct _fpx_sw_bytes in sw_reserved, and magic2 right after the XSAVE area
    frame.fill(0, FPSTATE + SW_RESERVED, FPSTATE + 512);
    frame.writeUInt32LE(FP_XSTATE_MAGIC1, FPSTATE + SW_RESERVED);
    frame.writeUInt32LE(size + 4, FPSTATE + SW_RESERVED + 4); // extended_size
    writeU64(frame, FPSTATE + SW_RESERVED + 8, xfeatures);
    frame.writeUInt32LE(size, FPSTATE + SW_RESERVED + 16); // xstate_size
    frame.writeUInt32LE(FP_XSTATE_MAGIC2, FPSTATE + size);
  }
  writeU64(frame, SIGMASK, sigmask);
  return { frame, sp: at + 8n };
}

const EINTR = 4;

/** The registers a parking frame holds for a thread found as `regs` (see above). */
export function frameRegisters(regs: Registers): Registers {
  const out = regs.clone();
  if (regs.getSigned('origAx') < 0n) return out;
  const code = -Number(regs.getSigned('ax'));
  if (code === ERESTART.SYS || code === ERESTART.NOINTR) {
    out.set('ax', regs.get('origAx'));
    out.set('ip', regs.get('ip') - 2n);
  } else if (code === ERESTART.NOHAND || code === ERESTART.RESTARTBLOCK) {
    out.set('ax', -EINTR);
  }
  return out;
}
