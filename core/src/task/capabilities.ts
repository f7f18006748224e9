import { PTRACE_O } from '../kernel/constants';
import { AmberError } from '../kernel/errors';
import { parseStatus, procRead } from './proc';

/** Capability numbers (linux/capability.h) amber asks about. */
export const CAP = { SYS_PTRACE: 19, SYS_ADMIN: 21, SYS_RESOURCE: 24, CHECKPOINT_RESTORE: 40 } as const;

export class MissingCapabilityError extends AmberError {}

/** Whether amber itself holds cap in its effective set. */
export function amberHas(cap: number): boolean {
  const eff = BigInt(`0x${parseStatus(procRead('self', 'status')).get('CapEff') ?? '0'}`);
  return ((eff >> BigInt(cap)) & 1n) === 1n;
}

/**
 * PTRACE_O_SUSPEND_SECCOMP keeps a task's seccomp filter from judging the syscalls amber injects,
 * but the kernel allows it only with CAP_SYS_ADMIN: without it amber seizes without the option
 * (a seize with it fails EPERM) and refuses tasks that have a filter (seizeOptionsFor).
 */
export function suspendSeccompOption(): number {
  return amberHas(CAP.SYS_ADMIN) ? PTRACE_O.SUSPEND_SECCOMP : 0;
}

/** Refuses a task under seccomp when amber could not suspend its filter. */
export function checkSeccompSuspendable(pid: number, seccompMode: number, options: number, doing: 'dump' | 'restore'): void {
  if (seccompMode === 0 || options & PTRACE_O.SUSPEND_SECCOMP) return;
  throw new MissingCapabilityError(
    `pid ${pid} runs under seccomp (mode ${seccompMode}): to ${doing} it amber needs CAP_SYS_ADMIN ` +
      '(to read the filters and keep them out of the way of injected syscalls), which it lacks; nothing was changed',
  );
}
