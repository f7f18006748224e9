import koffi from 'koffi';
import { KernelError } from './errors';

/**
 * The one place amber reaches libc. Every kernel call goes through the raw `syscall(2)` entry
 * with integer arguments; pointers are passed as addresses of Node Buffers, whose backing
 * stores never move.
 */
const libc = koffi.load('libc.so.6');
/** libc itself, for the few library calls kernel/ binds beside syscall(2) (spawn.ts). */
export const libcLibrary: ReturnType<typeof koffi.load> = libc;
const rawSyscall = libc.func('syscall', 'long', [
  'long', 'uint64_t', 'uint64_t', 'uint64_t', 'uint64_t', 'uint64_t', 'uint64_t',
]) as ((nr: number, a: Arg, b: Arg, c: Arg, d: Arg, e: Arg, f: Arg) => number | bigint) & {
  async(nr: number, a: Arg, b: Arg, c: Arg, d: Arg, e: Arg, f: Arg, done: (err: unknown, r: number | bigint) => void): void;
};

export type Arg = number | bigint;

const sleeper = new Int32Array(new SharedArrayBuffer(4));
/** Blocks amber's main thread for ms: ptrace waits must come from this thread, so nothing else may run there anyway. */
export function sleepSync(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

/** Address of a Buffer's first byte, for passing structures to the kernel. */
export function addressOf(buf: Buffer): bigint {
  return koffi.address(buf) as bigint;
}

export interface SyscallOptions {
  /** Task the call is about, for the error message. */
  pid?: number;
  /** What the call was about ("fd 7", "0x7f00...000"), for the error message. */
  detail?: string;
}

/** Calls a system call; returns its non-negative result or throws a KernelError. */
export function syscall(name: string, nr: number, args: Arg[], opts: SyscallOptions = {}): number {
  const r = rawSyscall(nr, args[0] ?? 0, args[1] ?? 0, args[2] ?? 0, args[3] ?? 0, args[4] ?? 0, args[5] ?? 0);
  const n = Number(r);
  if (n === -1) throw new KernelError(name, koffi.errno() as number, opts.pid, opts.detail);
  return n;
}

/** Like syscall(), but returns -errno instead of throwing. */
export function syscallRaw(nr: number, args: Arg[]): number {
  const r = rawSyscall(nr, args[0] ?? 0, args[1] ?? 0, args[2] ?? 0, args[3] ?? 0, args[4] ?? 0, args[5] ?? 0);
  const n = Number(r);
  return n === -1 ? -(koffi.errno() as number) : n;
}

/**
 * Like syscallRaw(), on a thread of libuv's pool: for long copies that may run side by side. The
 * Buffers the arguments point into must stay referenced until the promise settles.
 */
export function syscallAsync(nr: number, args: Arg[]): Promise<number> {
  return new Promise((resolve, reject) => {
    rawSyscall.async(nr, args[0] ?? 0, args[1] ?? 0, args[2] ?? 0, args[3] ?? 0, args[4] ?? 0, args[5] ?? 0, (err, r) => {
      if (err) reject(err instanceof Error ? err : new Error(String(err)));
      else resolve(Number(r) === -1 ? -(koffi.errno() as number) : Number(r));
    });
  });
}
