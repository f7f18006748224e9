import koffi from 'koffi';
import { KSIGACTION_SIZE, PROT, SA, SYS } from './constants';
import { mmapAnonymous, mprotect, rtSigaction } from './syscalls';

/*
 * Catching a signal while amber's main thread is blocked in wait4 or ptrace. Node runs a JS
 * signal handler only on the event loop, so `process.on('SIGINT')` would fire after the work is
 * over; and a process-directed signal may be delivered to any of Node's threads. So the handler
 * is a few instructions of amber's own, in a page amber maps for it:
 *
 *   handler:  lock inc dword [count]; mov [last], edi       ; note the signal
 *             tgkill(amber, main thread, wake); ret          ; and make sure the main thread sees it
 *   wake:     ret
 *   restorer: rt_sigreturn
 *
 * Both are installed without SA_RESTART: a blocking wait4 on the main thread returns EINTR, on
 * whichever thread the signal itself landed. Callers read the count between steps.
 */

const CODE_PAGE = 4096;
const HANDLER = 0;
const WAKE_HANDLER = 64;
const RESTORER = 80;
/** In the data page, after the code page. */
const COUNT = 0;
const LAST = 4;

/** A real-time signal nothing else in Node uses: only ever sent by amber to its own main thread. */
export const WAKE_SIGNAL = 63;

function handlerCode(codeAt: bigint, dataAt: bigint, pid: number): Buffer {
  const code = Buffer.alloc(CODE_PAGE, 0xcc);
  const rel = (insnEnd: number, target: bigint) => Number(target - (codeAt + BigInt(insnEnd)));
  let o = HANDLER;
  // lock inc dword [rip+rel32]
  code.set([0xf0, 0xff, 0x05], o);
  code.writeInt32LE(rel(o + 7, dataAt + BigInt(COUNT)), o + 3);
  o += 7;
  // mov [rip+rel32], edi
  code.set([0x89, 0x3d], o);
  code.writeInt32LE(rel(o + 6, dataAt + BigInt(LAST)), o + 2);
  o += 6;
  const movImm = (opcode: number, value: number) => {
    code[o] = opcode;
    code.writeInt32LE(value, o + 1);
    o += 5;
  };
  movImm(0xb8, SYS.tgkill); // eax
  movImm(0xbf, pid); // edi: tgid
  movImm(0xbe, pid); // esi: the main thread's tid is the pid
  movImm(0xba, WAKE_SIGNAL); // edx
  code.set([0x0f, 0x05, 0xc3], o); // syscall; ret
  code[WAKE_HANDLER] = 0xc3; // ret
  code.set([0xb8, SYS.rt_sigreturn, 0, 0, 0, 0x0f, 0x05], RESTORER);
  return code;
}

function sigaction(handler: bigint, restorer: bigint): Buffer {
  const act = Buffer.alloc(KSIGACTION_SIZE);
  act.writeBigUInt64LE(handler, 0);
  act.writeBigUInt64LE(BigInt(SA.RESTORER), 8);
  act.writeBigUInt64LE(restorer, 16);
  return act; // mask: nothing extra blocked
}

let page: bigint | undefined;

/** The handler page, made once per process; the wake signal's no-op handler is installed with it, for good. */
function handlerPage(): bigint {
  if (page !== undefined) return page;
  const at = mmapAnonymous(2 * CODE_PAGE, PROT.READ | PROT.WRITE);
  new Uint8Array(koffi.view(at, CODE_PAGE) as ArrayBuffer).set(handlerCode(at, at + BigInt(CODE_PAGE), process.pid));
  mprotect(at, CODE_PAGE, PROT.READ | PROT.EXEC);
  rtSigaction(WAKE_SIGNAL, sigaction(at + BigInt(WAKE_HANDLER), at + BigInt(RESTORER)), null);
  page = at;
  return at;
}

/**
 * Makes sure WAKE_SIGNAL, sent to amber's main thread, only ends a blocking syscall there with
 * EINTR (its default action would kill amber).
 */
export function ensureWakeHandler(): void {
  handlerPage();
}

/**
 * amber's own handler for some signals, for as long as it is installed; the dispositions that
 * were there before are put back by uninstall().
 */
export class SignalTrap {
  private readonly counters: Int32Array;
  private readonly previous = new Map<number, Buffer>();

  private constructor(at: bigint, readonly signals: number[]) {
    this.counters = new Int32Array(koffi.view(at + BigInt(CODE_PAGE), 8) as ArrayBuffer);
  }

  /** Installs the handler for signals; the count starts from zero. */
  static install(signals: number[]): SignalTrap {
    const at = handlerPage();
    const trap = new SignalTrap(at, signals);
    Atomics.store(trap.counters, COUNT / 4, 0);
    Atomics.store(trap.counters, LAST / 4, 0);
    try {
      for (const sig of signals) {
        const old = Buffer.alloc(KSIGACTION_SIZE);
        rtSigaction(sig, sigaction(at + BigInt(HANDLER), at + BigInt(RESTORER)), old);
        trap.previous.set(sig, old);
      }
    } catch (e) {
      trap.uninstall();
      throw e;
    }
    return trap;
  }

  /** How many of the signals have arrived since install(). */
  get count(): number {
    return Atomics.load(this.counters, COUNT / 4);
  }

  /** The last of them that arrived (0: none yet). */
  get lastSignal(): number {
    return Atomics.load(this.counters, LAST / 4);
  }

  /**
   * Puts the previous dispositions of the trapped signals back. The wake signal keeps its no-op
   * handler and the page stays mapped (two pages): a handler another thread entered just before
   * may still be running there, and its wake may still be on the way.
   */
  uninstall(): void {
    for (const [sig, old] of this.previous) rtSigaction(sig, old, null);
    this.previous.clear();
  }
}
