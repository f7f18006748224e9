import { i64Words, u64Words } from './bytes';

/** struct user_regs_struct of x86-64, in the kernel's order (also the order of CRIU's gpregs fields). */
export const REG_NAMES = [
  'r15', 'r14', 'r13', 'r12', 'bp', 'bx', 'r11', 'r10', 'r9', 'r8', 'ax', 'cx', 'dx', 'si', 'di',
  'origAx', 'ip', 'cs', 'flags', 'sp', 'ss', 'fsBase', 'gsBase', 'ds', 'es', 'fs', 'gs',
] as const;
export type RegName = (typeof REG_NAMES)[number];
export const USER_REGS_SIZE = REG_NAMES.length * 8;

const INDEX = Object.fromEntries(REG_NAMES.map((n, i) => [n, i])) as Record<RegName, number>;

/** A task's general-purpose registers, backed by the raw user_regs_struct bytes. */
export class Registers {
  readonly raw: Buffer;
  /** raw as words: get and set go through it, and PTRACE_SETREGS passes raw */
  private readonly words: BigUint64Array;
  private readonly signed: BigInt64Array;

  /** raw: taken over as it is, or copied where it is not 8-byte aligned (a slice of node's pool). */
  constructor(raw: Buffer = Buffer.alloc(USER_REGS_SIZE)) {
    this.raw = (raw.byteOffset & 7) === 0 ? raw : Buffer.from(Uint8Array.from(raw).buffer);
    this.words = u64Words(this.raw);
    this.signed = i64Words(this.raw);
  }

  get(name: RegName): bigint {
    return this.words[INDEX[name]];
  }

  /** Signed view, for rax/orig_rax, where the kernel keeps -errno and -1. */
  getSigned(name: RegName): bigint {
    return this.signed[INDEX[name]];
  }

  set(name: RegName, value: bigint | number): void {
    // a typed array's store takes the low 64 bits, as writeU64 did
    this.words[INDEX[name]] = typeof value === 'bigint' ? value : BigInt(value);
  }

  clone(): Registers {
    const copy = Buffer.alloc(this.raw.length);
    this.raw.copy(copy);
    return new Registers(copy);
  }

  toRecord(): Record<RegName, bigint> {
    const out = {} as Record<RegName, bigint>;
    for (let i = 0; i < REG_NAMES.length; i++) out[REG_NAMES[i]] = this.words[i];
    return out;
  }

  static fromRecord(rec: Partial<Record<RegName, bigint>>): Registers {
    const r = new Registers();
    for (const n of REG_NAMES) r.set(n, rec[n] ?? 0n);
    return r;
  }
}
