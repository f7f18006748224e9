import { KernelError } from '../kernel/errors';
import { SYSCALLS, type ArgsOf, type SyscallArg, type SyscallName } from '../kernel/syscall-table';
import { callName } from './remote-calls';

/**
 * A call loop, run by the task over a table of entries {nr, six args, result} of u64 (rbx: the
 * table, r12: how many): each call's rax goes into its entry, the first failure (-4095..-1) ends
 * the loop; then int3. Many calls for one stop: an injected call costs its round trip (two
 * context switches, ~120 us on this machine when loaded), not the syscall.
 *   top: test r12,r12; jz done; mov rax,[rbx]; mov rdi,[rbx+8]; mov rsi,[rbx+16]; mov rdx,[rbx+24]
 *        mov r10,[rbx+32]; mov r8,[rbx+40]; mov r9,[rbx+48]; syscall; mov [rbx+56],rax
 *        cmp rax,-4095; jae done; add rbx,64; dec r12; jmp top
 *   done: int3
 */
export const CALL_LOOP = Buffer.from([
  0x4d, 0x85, 0xe4, 0x74, 0x32, 0x48, 0x8b, 0x03, 0x48, 0x8b, 0x7b, 0x08, 0x48, 0x8b, 0x73, 0x10,
  0x48, 0x8b, 0x53, 0x18, 0x4c, 0x8b, 0x53, 0x20, 0x4c, 0x8b, 0x43, 0x28, 0x4c, 0x8b, 0x4b, 0x30,
  0x0f, 0x05, 0x48, 0x89, 0x43, 0x38, 0x48, 0x3d, 0x01, 0xf0, 0xff, 0xff, 0x73, 0x09, 0x48, 0x83,
  0xc3, 0x40, 0x49, 0xff, 0xcc, 0xeb, 0xc9, 0xcc,
]);
/** Where the call loop sits in the scratch area. */
export const CALL_LOOP_OFFSET = 256;
const CALL_ENTRY = 64;
const RESULT_AT = 56;

/** One call of the table for invokeMany: its name, its arguments, what its error names. */
export type TableCall = { [N in SyscallName]: { name: N; args: ArgsOf<N>; detail?: string } }[SyscallName];

/** The arguments given, without the optional ones left out. */
export function argsOfCall(c: TableCall): SyscallArg[] {
  return (c.args as readonly (SyscallArg | undefined)[]).filter((a): a is SyscallArg => a !== undefined);
}

/** The call loop's table for `calls`; `stage` puts a string or Buffer argument in the task and gives its address. */
export function encodeCallTable(calls: readonly TableCall[], stage: (a: string | Buffer) => bigint): Buffer {
  const table = Buffer.alloc(calls.length * CALL_ENTRY);
  calls.forEach((c, i) => {
    const { nr, params } = SYSCALLS[c.name];
    const args = argsOfCall(c);
    if (args.length > params.length) throw new Error(`${c.name} takes ${params.length} arguments, given ${args.length}`);
    table.writeBigInt64LE(BigInt(nr), i * CALL_ENTRY);
    args.forEach((a, j) => {
      const v = typeof a === 'string' || Buffer.isBuffer(a) ? stage(a) : BigInt(a);
      table.writeBigInt64LE(BigInt.asIntN(64, v), i * CALL_ENTRY + 8 + j * 8);
    });
  });
  return table;
}

/**
 * Each call's rax from the table the loop ran over; the first failure throws its KernelError
 * (the calls after it did not run).
 */
export function callTableResults(calls: readonly TableCall[], done: Buffer, pid: number): number[] {
  return calls.map((c, i) => {
    const r = Number(done.readBigInt64LE(i * CALL_ENTRY + RESULT_AT));
    if (r < 0 && r > -4096) {
      const args = argsOfCall(c);
      throw new KernelError(`${callName(c.name, args)} (in the task)`, -r, pid, c.detail ?? args.find((a): a is string => typeof a === 'string'));
    }
    return r;
  });
}
