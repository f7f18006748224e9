import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { kill, PR, prctl, SIG } from '@amber/core';
import { targetPath } from './paths';
import { isAlive, parentOf, procState, reap, sleep, type ExitInfo } from './reap';
import { makeTmpDir, removeTmpDirs } from './tmp';

/** Placeholder in startTarget() args, replaced by the target's scratch directory. */
export const WORKDIR = '@WORKDIR@';

export interface Target {
  name: string;
  pid: number;
  /** The target's stdout and stderr, opened for append. */
  logPath: string;
  /** Scratch directory of this target (also holds the log). */
  workdir: string;
  /** Log lines printed up to and including READY. */
  readyLines: string[];
}

export interface StartOptions {
  /** Extra environment for the target. */
  env?: Record<string, string>;
  /** Scratch directory to use instead of a fresh one. */
  workdir?: string;
  /** How long to wait for READY (default 15 s). */
  timeoutMs?: number;
  /** Run this executable (e.g. a copy of a target) instead of test/targets/bin/NAME. */
  binary?: string;
  /**
   * The uid (and gid) the target runs as, or drops to: its scratch directory and log are given to
   * it, as they would be its own (a restore opens the log again with the target's credentials).
   */
  owner?: number;
  /**
   * A network namespace file (/run/netns/NAME, Host.nsPath) to start the target in. Only the
   * network namespace changes (nsenter --net): `ip netns exec` would also give it a mount
   * namespace of its own.
   */
  netns?: string;
}

export interface Verdict {
  passed: boolean;
  /** Log lines after READY: the target's own check results. */
  lines: string[];
  exit: ExitInfo;
}

const started = new Map<number, Target>();
let subreaper = false;

/** Orphans of our descendants (the targets, after setsid -f) are reparented to this process. */
export function becomeSubreaper(): void {
  if (subreaper) return;
  prctl(PR.SET_CHILD_SUBREAPER, 1);
  subreaper = true;
}

export function readLog(target: Target): string {
  return fs.readFileSync(target.logPath, 'utf8');
}

function readPidFile(file: string): number | null {
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim() : '';
  return /^\d+$/.test(text) ? Number(text) : null;
}

/**
 * Starts test/targets/bin/NAME detached: setsid -f forks it away from Node (libuv must never be
 * its parent) and, since we are a child subreaper, it is reparented to this process, so we can
 * reap it. The shell writes its pid before exec'ing the target, so even a target that never
 * reports READY can be killed by pid.
 */
export async function startTarget(name: string, args: string[] = [], opts: StartOptions = {}): Promise<Target> {
  becomeSubreaper();
  const workdir = opts.workdir ?? makeTmpDir(name);
  const logPath = path.join(workdir, `${name}.log`);
  const pidFile = path.join(workdir, `${name}.pid`);
  const argv = args.map((a) => (a === WORKDIR ? workdir : a));
  const logFd = fs.openSync(logPath, 'a');
  if (opts.owner !== undefined) {
    fs.chownSync(workdir, opts.owner, opts.owner);
    fs.fchownSync(logFd, opts.owner, opts.owner);
  }
  try {
    // Only stdin/out/err go to the target: an fd the test runner inherited from whoever started it
    // (a pipe of the caller's shell, say) would be a pipe to a process outside the dumped tree.
    // (bash, not dash: dash's redirections take one-digit fds only)
    const closeInherited = 'for f in /proc/$$/fd/*; do n=${f##*/}; [ "$n" -gt 2 ] && eval "exec $n>&-"; done;';
    const enter = opts.netns !== undefined ? ['nsenter', `--net=${opts.netns}`] : [];
    const r = spawnSync('setsid', ['-f', ...enter, 'bash', '-c', `${closeInherited} echo $$ >"$1"; shift; exec "$@"`, 'bash', pidFile, opts.binary ?? targetPath(name), ...argv], {
      stdio: ['ignore', logFd, logFd],
      env: { ...process.env, ...opts.env },
    });
    if (r.error || r.status !== 0) throw new Error(`setsid -f ${name} failed: ${r.error?.message ?? `exit ${r.status}`}`);
  } finally {
    fs.closeSync(logFd);
  }
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const deadline = Date.now() + timeoutMs;
  let pid: number | null = null;
  const target: Target = { name, pid: 0, logPath, workdir, readyLines: [] };
  for (;;) {
    if (pid === null && (pid = readPidFile(pidFile)) !== null) {
      target.pid = pid;
      started.set(pid, target);
    }
    const log = fs.readFileSync(logPath, 'utf8');
    const ready = /^READY (\d+)$/m.exec(log);
    if (ready && pid !== null) {
      if (Number(ready[1]) !== pid) throw new Error(`${name} printed READY ${ready[1]} but its pid is ${pid}\n${log}`);
      target.readyLines = log.slice(0, ready.index + ready[0].length).split('\n');
      return target;
    }
    const dead = pid !== null && !isAlive(pid);
    if (dead || Date.now() >= deadline) {
      let why = dead ? 'exited before READY' : `did not print READY within ${timeoutMs} ms`;
      if (pid !== null) why += ` (${await stopTarget(pid)})`;
      throw new Error(`target ${name} ${why}; log ${logPath}:\n${fs.readFileSync(logPath, 'utf8')}`);
    }
    await sleep(10);
  }
}

/** SIGKILLs (if alive) and reaps a started pid that is still our child; returns what happened. */
async function stopTarget(pid: number): Promise<string> {
  if (!started.has(pid)) throw new Error(`refusing to stop pid ${pid}: not started by this harness`);
  // Guards against pid reuse: a pid we started that is no longer our child is someone else's.
  if (procState(pid) === null || parentOf(pid) !== process.pid) return 'gone';
  // What the target forked is killed with it: children outlive a SIGKILLed parent (a session
  // leader that ignores the hangup keeps running). They are its descendants now, so ours.
  const forked = forkedBy(pid);
  if (isAlive(pid)) kill(pid, SIG.KILL);
  for (const p of forked) if (isAlive(p)) kill(p, SIG.KILL);
  const text = (await reap(pid, 5_000)).text;
  for (const p of forked) await reap(p, 5_000).catch(() => undefined);
  return text;
}

/** Every descendant of pid, as /proc shows them now (none if it is gone meanwhile). */
function forkedBy(pid: number): number[] {
  const out: number[] = [];
  let tids: string[] = [];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    let kids = '';
    try {
      kids = fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
    } catch {
      continue;
    }
    for (const k of kids ? kids.split(/\s+/).map(Number) : []) out.push(k, ...forkedBy(k));
  }
  return out;
}

/** Sends SIGUSR1, waits for the target to exit and reads its self-check from the log. */
export async function verdict(target: Target, timeoutMs = 15_000): Promise<Verdict> {
  if (!started.has(target.pid)) throw new Error(`pid ${target.pid} was not started by this harness`);
  if (!isAlive(target.pid)) throw new Error(`target ${target.name} (pid ${target.pid}) is not running`);
  kill(target.pid, SIG.USR1);
  const exit = await reap(target.pid, timeoutMs);
  const log = readLog(target).split('\n');
  const lastReady = log.map((l) => l.startsWith('READY ')).lastIndexOf(true);
  const lines = log.slice(lastReady + 1).filter((l) => l !== '');
  const passed = exit.code === 0 && lines.includes('PASS') && !lines.some((l) => l.startsWith('FAIL'));
  return { passed, lines, exit };
}

/** Kills and reaps every target still running, then removes the scratch directories. */
export async function cleanup(): Promise<void> {
  const errors: string[] = [];
  for (const pid of started.keys()) {
    try {
      await stopTarget(pid);
    } catch (err) {
      errors.push(String(err));
    }
  }
  started.clear();
  removeTmpDirs();
  if (errors.length) throw new Error(`cleanup: ${errors.join('; ')}`);
}
