import * as fs from 'node:fs';
import { KernelError, waitpid, WaitStatus, WNOHANG } from '@amber/core';

export interface ExitInfo {
  /** Exit code when the process exited normally, else null. */
  code: number | null;
  /** Terminating signal number when it was killed, else null. */
  signal: number | null;
  /** Raw wait status. */
  status: number;
  /** "exited with status 0", "killed by signal 9". */
  text: string;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Scheduler state letter from /proc/PID/stat, or null when the pid does not exist. */
export function procState(pid: number): string | null {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // comm may contain spaces and parentheses; the state follows the last ')'.
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
}

/** True while pid exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  const state = procState(pid);
  return state !== null && state !== 'Z' && state !== 'X';
}

/** PPid of pid from /proc/PID/status, or null when it does not exist. */
export function parentOf(pid: number): number | null {
  try {
    const m = /^PPid:\s+(\d+)$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

function exitInfo(status: number): ExitInfo {
  const exited = WaitStatus.exited(status);
  return {
    code: exited ? WaitStatus.exitCode(status) : null,
    signal: exited ? null : WaitStatus.termSig(status),
    status,
    text: WaitStatus.describe(status),
  };
}

/**
 * Waits for pid, a child of this process (directly or as its subreaper), to exit and reaps it.
 * ECHILD is retried until the deadline: a restored task may still belong to a restore helper
 * that has not exited yet, after which it is reparented to us.
 */
export async function reap(pid: number, timeoutMs = 10_000): Promise<ExitInfo> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let notChild = false;
    try {
      const r = waitpid(pid, WNOHANG);
      if (r.pid === pid && !WaitStatus.stopped(r.status)) return exitInfo(r.status);
    } catch (err) {
      if (!(err instanceof KernelError) || err.errnoName !== 'ECHILD') throw err;
      if (procState(pid) === null) throw new Error(`reap: pid ${pid} does not exist (already reaped?)`);
      notChild = true;
    }
    if (Date.now() >= deadline) {
      if (notChild) {
        throw new Error(
          `reap: pid ${pid} is not a child of the test process ${process.pid} (its parent is ${parentOf(pid)})`,
        );
      }
      throw new Error(`reap: pid ${pid} did not exit within ${timeoutMs} ms (state ${procState(pid)})`);
    }
    await sleep(5);
  }
}
