import { constants } from 'node:os';

const errnoNames = new Map<number, string>();
for (const [name, value] of Object.entries(constants.errno)) {
  if (!errnoNames.has(value)) errnoNames.set(value, name);
}

export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `E${errno}`;
}

export function errnoNumber(name: string): number {
  const value = (constants.errno as Record<string, number>)[name];
  if (value === undefined) throw new Error(`unknown errno name ${name}`);
  return value;
}

/** Base of every error amber reports to a user: one line, naming what and where. */
export class AmberError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A system call (local or injected into a task) that failed. */
export class KernelError extends AmberError {
  readonly errnoName: string;
  constructor(
    readonly syscall: string,
    readonly errno: number,
    readonly pid?: number,
    readonly detail?: string,
  ) {
    const name = errnoName(errno);
    const where = pid !== undefined ? ` (pid ${pid}${detail ? `, ${detail}` : ''})` : detail ? ` (${detail})` : '';
    super(`${syscall} failed: ${name}${where}`);
    this.errnoName = name;
  }
}
