import { readFileSync } from 'node:fs';
import { AmberError } from '../kernel/errors';
import { WaitStatus } from '../kernel/syscalls';

/** "pid N" for a process's main thread, "pid N (thread T)" for another thread (while /proc knows it). */
export function describeThread(tid: number): string {
  try {
    const m = /^Tgid:\s+(\d+)$/m.exec(readFileSync(`/proc/${tid}/status`, 'utf8'));
    if (m && Number(m[1]) !== tid) return `pid ${m[1]} (thread ${tid})`;
  } catch {
    // gone: its tid is all there is to say
  }
  return `pid ${tid}`;
}

/** A traced task did something other than stop where amber expected it to. */
export class UnexpectedStopError extends AmberError {
  constructor(readonly pid: number, readonly status: number, readonly expected: string) {
    super(`pid ${pid}: expected ${expected}, but it ${WaitStatus.describe(status)}`);
  }
}

/** A traced task exited or was killed while amber worked on it (status: its wait status, when known). */
export class TaskGoneError extends AmberError {
  constructor(readonly pid: number, readonly status: number | undefined, readonly during: string, what?: string) {
    super(`${describeThread(pid)} ${what ?? (status === undefined ? 'exited' : WaitStatus.describe(status))} during ${during}`);
  }
}

/** A traced task that is alive but did not stop where amber waited for it. */
export class WaitTimeoutError extends AmberError {
  constructor(readonly pid: number, readonly during: string, limitMs: number) {
    super(`${describeThread(pid)} did not stop within ${Math.round(limitMs / 1000)} s during ${during}`);
  }
}
