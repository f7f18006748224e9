import { MADV, MCL, MLOCK_ONFAULT, type TableCall } from '@amber/core';
import type { VmaEntry } from './vmas';

/** smaps VmFlags that madvise() sets, and the advice that sets each. */
const ADVICE_OF_FLAG: ReadonlyArray<[string, number]> = [
  ['dc', MADV.DONTFORK], ['wf', MADV.WIPEONFORK], ['dd', MADV.DONTDUMP], ['hg', MADV.HUGEPAGE],
  ['nh', MADV.NOHUGEPAGE], ['mg', MADV.MERGEABLE], ['sr', MADV.SEQUENTIAL], ['rr', MADV.RANDOM],
];

/** VmaEntry.madv: bit (1 << MADV_x) for each advice in effect, as CRIU keeps it. */
export function madvOf(vmFlags: string[]): bigint {
  let madv = 0n;
  for (let i = 0; i < ADVICE_OF_FLAG.length; i++) {
    const entry = ADVICE_OF_FLAG[i];
    if (vmFlags.includes(entry[0])) madv |= 1n << BigInt(entry[1]);
  }
  return madv;
}

/** mlock state of a mapping: 'lo' locked, 'lf' locked on fault. Kept in madv above bit 32. */
export const LOCKED_BIT = 1n << 40n;
export const LOCKED_ONFAULT_BIT = 1n << 41n;

export function lockOf(vmFlags: string[]): bigint {
  return (vmFlags.includes('lo') ? LOCKED_BIT : 0n) | (vmFlags.includes('lf') ? LOCKED_ONFAULT_BIT : 0n);
}

/** The task's mlockall(MCL_FUTURE...) shows on any mapping created since: amber's own scratch area. */
export function mlockallOf(scratchVmFlags: string[] | undefined): number {
  if (!scratchVmFlags?.includes('lo')) return 0;
  return MCL.FUTURE | (scratchVmFlags.includes('lf') ? MCL.ONFAULT : 0);
}

/** The madvise calls that give a mapping its advice back. */
export function adviceCalls(v: VmaEntry): TableCall[] {
  const madv = v.madv ?? 0n;
  const len = v.end - v.start;
  const where = `0x${v.start.toString(16)}`;
  return ADVICE_OF_FLAG.filter(([, advice]) => madv & (1n << BigInt(advice))).map(([flag, advice]): TableCall => ({ name: 'madvise', args: [v.start, len, advice], detail: `${flag} ${where}` }));
}

/** The mlock2 call that locks a mapping again, if it was locked. */
export function lockCalls(v: VmaEntry): TableCall[] {
  const madv = v.madv ?? 0n;
  if (!(madv & LOCKED_BIT)) return [];
  const flags = madv & LOCKED_ONFAULT_BIT ? MLOCK_ONFAULT : 0;
  return [{ name: 'mlock2', args: [v.start, v.end - v.start, flags], detail: `0x${v.start.toString(16)}` }];
}
