import { WNOHANG } from '../kernel/constants';
import { KernelError } from '../kernel/errors';
import { waitpid, WaitStatus } from '../kernel/syscalls';
import { pidHolder } from '../task/creator';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Waits until pid exits and returns its exit status as a shell would (128 + signal when killed).
 * Reaping needs amber to be its parent (restore makes itself a subreaper for that); otherwise it
 * watches /proc and the status is unknown.
 */
export async function waitForExit(pid: number, pollMs = 50): Promise<number | undefined> {
  for (;;) {
    try {
      const r = waitpid(pid, WNOHANG);
      if (r.pid === pid) {
        if (WaitStatus.stopped(r.status)) continue;
        return WaitStatus.exited(r.status) ? WaitStatus.exitCode(r.status) : 128 + WaitStatus.termSig(r.status);
      }
    } catch (e) {
      if (!(e instanceof KernelError && e.errnoName === 'ECHILD')) throw e;
      const holder = pidHolder(pid);
      if (!holder || holder.state === 'Z') return undefined;
    }
    await sleep(pollMs);
  }
}
