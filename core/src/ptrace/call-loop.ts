import { KernelError } from '../kernel/errors';
import { SYSCALLS, type ArgsOf, type SyscallArg, type SyscallName } from '../kernel/syscall-table';
import { callName } from './remote-calls';
import { i64Words, u64Words, writeU32 } from '../kernel/bytes';

/**
 * A call loop, run by the task over a table of entries {nr, six args, result, from} of u64 (rbx:
 * the table, r12: how many): each call's rax goes into its entry, the first failure (-4095..-1)
 * ends the loop; then int3. Many calls for one stop: an injected call costs its round trip (two
 * context switches, ~120 us on this machine when loaded), not the syscall. Bit j of `from` says
 * argument j is an address to load the argument from: the result slot of an earlier entry, so a
 * call can take what an earlier one returned (pidfd_open, then pidfd_getfd on that pidfd).
 *   top: test r12,r12; jz done; mov rax,[rbx]; mov rdi,[rbx+8]; mov rsi,[rbx+16]; mov rdx,[rbx+24]
 *        mov r10,[rbx+32]; mov r8,[rbx+40]; mov r9,[rbx+48]; mov ecx,[rbx+64]
 *        test cl,1; jz 1f; mov rdi,[rdi]; 1: ... (rsi 2, rdx 4, r10 8, r8 16, r9 32)
 *        syscall; mov [rbx+56],rax; cmp rax,-4095; jae done; add rbx,72; dec r12; jmp top
 *   done: int3
 */
export const CALL_LOOP = Buffer.from([
  0x4d, 0x85, 0xe4, 0x74, 0x65, 0x48, 0x8b, 0x03, 0x48, 0x8b, 0x7b, 0x08, 0x48, 0x8b, 0x73, 0x10,
  0x48, 0x8b, 0x53, 0x18, 0x4c, 0x8b, 0x53, 0x20, 0x4c, 0x8b, 0x43, 0x28, 0x4c, 0x8b, 0x4b, 0x30,
  0x8b, 0x4b, 0x40, 0xf6, 0xc1, 0x01, 0x74, 0x03, 0x48, 0x8b, 0x3f, 0xf6, 0xc1, 0x02, 0x74, 0x03,
  0x48, 0x8b, 0x36, 0xf6, 0xc1, 0x04, 0x74, 0x03, 0x48, 0x8b, 0x12, 0xf6, 0xc1, 0x08, 0x74, 0x03,
  0x4d, 0x8b, 0x12, 0xf6, 0xc1, 0x10, 0x74, 0x03, 0x4d, 0x8b, 0x00, 0xf6, 0xc1, 0x20, 0x74, 0x03,
  0x4d, 0x8b, 0x09, 0x0f, 0x05, 0x48, 0x89, 0x43, 0x38, 0x48, 0x3d, 0x01, 0xf0, 0xff, 0xff, 0x73,
  0x09, 0x48, 0x83, 0xc3, 0x48, 0x49, 0xff, 0xcc, 0xeb, 0x96, 0xcc,
]);
/** Where the call loop sits in the scratch area. */
export const CALL_LOOP_OFFSET = 256;
const CALL_ENTRY = 72;
const RESULT_AT = 56;
const FROM_AT = 64;
/** A result slot no call has written: the loop ended before it. */
const NOT_RUN = -(1n << 63n);

/**
 * One call of the table for invokeMany: its name, its arguments, what its error names; with
 * `argsFrom`, argument `arg` is what the earlier call `call` of the same table returned (the
 * argument given in its place is not used).
 */
export type TableCall = { [N in SyscallName]: { name: N; args: ArgsOf<N>; detail?: string; argsFrom?: readonly ArgFrom[] } }[SyscallName];

export interface ArgFrom {
  arg: number;
  call: number;
}

/** What a table of calls did: each call's rax (undefined: not run), and the first failure's error. */
export interface TableOutcome {
  results: (number | undefined)[];
  error?: KernelError;
}

/** The arguments given, without the optional ones left out. */
export function argsOfCall(c: TableCall): SyscallArg[] {
  return (c.args as readonly (SyscallArg | undefined)[]).filter((a): a is SyscallArg => a !== undefined);
}

function checkArgsFrom(calls: readonly TableCall[]): void {
  calls.forEach((c, i) => {
    for (const f of c.argsFrom ?? []) {
      if (f.call < 0 || f.call >= i || f.arg < 0 || f.arg > 5) throw new Error(`${c.name} (call ${i} of a table): argument ${f.arg} from call ${f.call}, which does not run before it`);
    }
  });
}

/**
 * The call loop's table for `calls`, for the table's address `at`; `stage` puts a string or
 * Buffer argument in the task and gives its address.
 */
export function encodeCallTable(calls: readonly TableCall[], stage: (a: string | Buffer) => bigint): { table: Buffer; link(at: bigint): void } {
  checkArgsFrom(calls);
  const table = Buffer.alloc(calls.length * CALL_ENTRY);
  const words = u64Words(table);
  // indexed loops: without TurboFan (cli/bin/run.js) closures and iterators per call add up
  for (let i = 0; i < calls.length; i++) {
    const c = calls[i];
    const { nr, params } = SYSCALLS[c.name];
    const args = argsOfCall(c);
    if (args.length > params.length) throw new Error(`${c.name} takes ${params.length} arguments, given ${args.length}`);
    const w = (i * CALL_ENTRY) / 8;
    words[w] = BigInt(nr);
    for (let j = 0; j < args.length; j++) {
      const a = args[j];
      words[w + 1 + j] = typeof a === 'string' || Buffer.isBuffer(a) ? stage(a) : BigInt(a);
    }
    words[w + RESULT_AT / 8] = NOT_RUN;
  }
  // the addresses of the result slots an argument is loaded from, once the table's place is known
  const link = (at: bigint) =>
    calls.forEach((c, i) => {
      let mask = 0;
      for (const f of c.argsFrom ?? []) {
        words[(i * CALL_ENTRY) / 8 + 1 + f.arg] = at + BigInt(f.call * CALL_ENTRY + RESULT_AT);
        mask |= 1 << f.arg;
      }
      writeU32(table, i * CALL_ENTRY + FROM_AT, mask);
    });
  return { table, link };
}

/** The outcome of the calls from the table the loop ran over. */
export function callTableOutcome(calls: readonly TableCall[], done: Buffer, pid: number): TableOutcome {
  const results: (number | undefined)[] = calls.map(() => undefined);
  const words = i64Words(done);
  for (let i = 0; i < calls.length; i++) {
    const c = calls[i];
    const raw = words[(i * CALL_ENTRY + RESULT_AT) / 8];
    if (raw === NOT_RUN) break;
    const r = (results[i] = Number(raw));
    if (r < 0 && r > -4096) return { results, error: callError(c, argsOfCall(c), -r, pid) };
  }
  return { results };
}

/** The error of a call of a table that failed with errno, as `sys` would have thrown it. */
export function callError(c: TableCall, args: readonly SyscallArg[], errno: number, pid: number): KernelError {
  return new KernelError(`${callName(c.name, args)} (in the task)`, errno, pid, c.detail ?? args.find((a): a is string => typeof a === 'string'));
}
