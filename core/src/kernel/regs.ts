import { readI64, readU64, writeU64 } from './bytes';

/** struct user_regs_struct of x86-64, in the kernel's order (also the order of CRIU's gpregs fields). */
export const REG_NAMES = [
  'r15', 'r14', 'r13', 'r12', 'bp', 'bx', 'r11', 'r10', 'r9', 'r8', 'ax', 'cx', 'dx', 'si', 'di',
  'origAx', 'ip', 'cs', 'flags', 'sp', 'ss', 'fsBase', 'gsBase', 'ds', 'es', 'fs', 'gs',
] as const;
export type RegName = (typeof REG_NAMES)[number];
export const USER_REGS_SIZE = REG_NAMES.length * 8;

const offsets = new Map<RegName, number>(REG_NAMES.map((n, i) => [n, i * 8]));

/** A task's general-purpose registers, backed by the raw user_regs_struct bytes. */
export class Registers {
  constructor(readonly raw: Buffer = Buffer.alloc(USER_REGS_SIZE)) {}

  get(name: RegName): bigint {
    return readU64(this.raw, offsets.get(name)!);
  }

  /** Signed view, for rax/orig_rax, where the kernel keeps -errno and -1. */
  getSigned(name: RegName): bigint {
    return readI64(this.raw, offsets.get(name)!);
  }

  set(name: RegName, value: bigint | number): void {
    writeU64(this.raw, offsets.get(name)!, BigInt(value));
  }

  clone(): Registers {
    return new Registers(Buffer.from(this.raw));
  }

  toRecord(): Record<RegName, bigint> {
    const out = {} as Record<RegName, bigint>;
    for (let i = 0; i < REG_NAMES.length; i++) out[REG_NAMES[i]] = readU64(this.raw, i * 8);
    return out;
  }

  static fromRecord(rec: Partial<Record<RegName, bigint>>): Registers {
    const r = new Registers();
    for (const n of REG_NAMES) r.set(n, rec[n] ?? 0n);
    return r;
  }
}
