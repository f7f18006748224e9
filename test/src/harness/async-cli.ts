import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { cliEntry } from './paths';
import { amberEnv, type AmberResult } from './cli';

export interface RunningAmber {
  child: ChildProcess;
  pid: number;
  /** Settles when amber exits; after timeoutMs it is SIGKILLed and `timedOut` is set. */
  done: Promise<AmberResult & { timedOut: boolean }>;
  exited(): boolean;
}

/** Starts amber without waiting for it, so a test can signal it while it works. */
export function spawnAmber(args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): RunningAmber {
  const child = spawn(process.execPath, [cliEntry, ...args], {
    env: amberEnv(opts.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let finished = false;
  let timedOut = false;
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, opts.timeoutMs ?? 60_000);
  const done = new Promise<AmberResult & { timedOut: boolean }>((resolve) => {
    child.on('close', (status, signal) => {
      finished = true;
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr, timedOut });
    });
  });
  return { child, pid: child.pid!, done, exited: () => finished || child.exitCode !== null || child.signalCode !== null };
}

/** TracerPid of pid (0: untraced), or null when it does not exist. */
export function tracerOf(pid: number): number | null {
  try {
    const m = /^TracerPid:\s+(\d+)$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** /proc/PID/maps of every thread group given, as one text. */
export function mapsOf(pids: number[]): string {
  return pids.map((p) => `${p}\n${fs.readFileSync(`/proc/${p}/maps`, 'utf8')}`).join('\n');
}

/** Waits (polling every ms) until cond() holds or ms pass; returns whether it held. */
export async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 1));
  }
  return true;
}
