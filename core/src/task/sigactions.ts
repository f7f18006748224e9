import { NSIG, SIG } from '../kernel/constants';

/**
 * The signals a core image's sigactions list, in order. CRIU writes 62 entries, leaving out
 * SIGKILL and SIGSTOP (whose action can never change); amber's images before that wrote all 64.
 */
export const SIGACTION_SIGNALS: readonly number[] = Array.from({ length: NSIG }, (_, i) => i + 1).filter((s) => s !== SIG.KILL && s !== SIG.STOP);

/** The signal of entry i of a sigactions list of the given length (62 as CRIU's, or 64 as amber's first images). */
export function signalOfSigaction(i: number, count: number): number {
  return count === NSIG ? i + 1 : SIGACTION_SIGNALS[i];
}

/** The entry for sig in a sigactions list of either length, or undefined when it has none. */
export function sigactionOf<T>(list: readonly T[], sig: number): T | undefined {
  if (list.length === NSIG) return list[sig - 1];
  const i = SIGACTION_SIGNALS.indexOf(sig);
  return i < 0 ? undefined : list[i];
}
