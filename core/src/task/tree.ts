import { existsSync } from 'node:fs';
import { PTRACE_O, SIG } from '../kernel/constants';
import { AmberError, KernelError } from '../kernel/errors';
import { describeThread, TaskGoneError, WaitTimeoutError } from '../ptrace/errors';
import { WaitStatus } from '../kernel/syscalls';
import { checkpoint } from '../ptrace/interrupt';
import { Tracee } from '../ptrace/tracee';
import { IoUringError, isIoUringWorker, refuseIoUring, refuseIoUringInTree } from './io-uring';
import { listChildren, listThreads, parseStatus, procRead, ProcError, readStat } from './proc';
import { checkSeccompSuspendable } from './capabilities';

export class NoSuchProcessError extends AmberError {
  constructor(readonly pid: number) {
    super(`pid ${pid}: no such process`);
  }
}

/** PTRACE_SEIZE refused because another tracer (a debugger) holds the task. */
export class AlreadyTracedError extends AmberError {
  constructor(readonly pid: number, readonly tracer: number, readonly tracerComm: string) {
    super(`pid ${pid} is already traced by pid ${tracer} (${tracerComm}): a task has one tracer (a debugger, or a checkpoint in progress): detach it or wait until it is done`);
  }
}

/**
 * The freeze took longer than the dump allowed (CRIU's --timeout). A thread that never stopped
 * (a vfork parent, a task in uninterruptible sleep) cannot be detached while it runs: the kernel
 * detaches it, untouched, when amber exits.
 */
export class FreezeTimeoutError extends AmberError {
  constructor(readonly pid: number, readonly timeoutMs: number, readonly tid?: number) {
    super(`pid ${pid}: the tree was not frozen within ${timeoutMs / 1000} s (--timeout)${tid === undefined ? '' : `: ${describeThread(tid)}${stateOf(tid)} did not stop`}; it was left running`);
  }
}

function stateOf(tid: number): string {
  const st = gone(false, () => readStat(tid));
  return st ? ` (${st.comm}, state ${st.state})` : '';
}

export interface FrozenTask {
  pid: number;
  /** Every thread, the main one (tid == pid) first. Empty for a zombie. */
  tracees: Map<number, Tracee>;
  /** Job-control stopped (SIGSTOP and friends) when amber came. */
  stopped: boolean;
  /** A zombie: exited, not yet reaped by its parent. Its wait status. */
  zombie?: { waitStatus: number };
}

const STOP_SIGNALS: number[] = [SIG.STOP, SIG.TSTP, SIG.TTIN, SIG.TTOU];

/**
 * Freezes a process tree with PTRACE_SEIZE + PTRACE_INTERRUPT on every thread, parents before
 * children. A task's children are read once all its threads are stopped (freezeThreads), so
 * those it forked while the walk came to it are found; a frozen task cannot fork, so the walk ends.
 *
 * io_uring is refused before anything is seized (its workers never stop, see io-uring.ts): the
 * whole tree is looked at first, a task forked since when the walk comes to it, and every thread
 * just before it is seized. (A ring a task set up between the look and its freeze, with no worker
 * yet, is refused as an fd no plugin dumps, in a dump that takes the fd tables.)
 */
export function freezeTree(rootPid: number, options = 0, timeoutMs?: number): FrozenTask[] {
  if (!existsSync(`/proc/${rootPid}`)) throw new NoSuchProcessError(rootPid);
  const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
  const lookedAt = refuseIoUringInTree(rootPid);
  const tasks = new Map<number, FrozenTask>();
  try {
    // Once all its threads are stopped a task forks no more, so its children, read then, are
    // all there is: one walk suffices, but for orphans. A task that exits during the walk hands
    // its children to a subreaper, which may be a task walked already: then the children of every
    // frozen task are read again, until no new one shows.
    const walk = { exits: 0 };
    const queue = [rootPid];
    for (;;) {
      while (queue.length) {
        const pid = queue.shift()!;
        if (tasks.has(pid)) continue;
        const st = gone(pid === rootPid, () => readStat(pid));
        if (!st) {
          walk.exits++; // exited and reaped while we walked
          continue;
        }
        const task: FrozenTask = { pid, tracees: new Map(), stopped: false };
        tasks.set(pid, task);
        if (st.state === 'Z') {
          task.zombie = { waitStatus: st.exitCode };
          walk.exits++;
          continue;
        }
        // one the look before missed (forked since) is looked at now; each thread is, below
        if (!lookedAt.has(pid)) gone(pid === rootPid, () => refuseIoUring(pid));
        if (!freezeThreads(task, rootPid, options, deadline, timeoutMs, walk)) {
          if (!task.zombie) tasks.delete(pid);
          continue;
        }
        queue.push(...(gone(pid === rootPid, () => listChildren(pid, [...task.tracees.keys()])) ?? []));
      }
      if (!walk.exits) break;
      walk.exits = 0;
      for (const t of tasks.values()) {
        if (t.zombie) continue;
        const children = gone(t.pid === rootPid, () => listChildren(t.pid, [...t.tracees.keys()])) ?? [];
        queue.push(...children.filter((c) => !tasks.has(c)));
      }
      if (!queue.length) break;
    }
  } catch (e) {
    // a thread interrupted but not yet waited for is detached only once it has stopped
    for (const t of tasks.values()) {
      for (const tr of t.tracees.values()) {
        try {
          // under --timeout a thread that would not stop is not waited for past the limit (+100 ms)
          if (!tr.firstStop) tr.awaitFirstStop(deadline === undefined ? undefined : Math.max(100, deadline - Date.now()));
        } catch {
          // gone, or let go by awaitFirstStop
        }
      }
    }
    thawTree([...tasks.values()]);
    throw e;
  }
  return [...tasks.values()].map((t) => ({
    ...t,
    tracees: new Map([...t.tracees].sort(([a], [b]) => (a === t.pid ? -1 : b === t.pid ? 1 : a - b))),
  }));
}

/**
 * Seizes every thread of task.pid: the main thread first, alone; the others are all interrupted
 * before amber waits for any of them, so that they stop at the same time. A thread that was
 * still running could clone another meanwhile, so the threads are listed again until a listing
 * finds none new. False if the process exited under our hands (a zombie now, or gone).
 */
function freezeThreads(task: FrozenTask, rootPid: number, options: number, deadline: number | undefined, timeoutMs: number | undefined, walk: { exits: number }): boolean {
  const pid = task.pid;
  for (;;) {
    const tids = (gone(pid === rootPid, () => listThreads(pid)) ?? []).filter((tid) => !task.tracees.has(tid));
    if (!tids.length) return true;
    const waiting: Tracee[] = [];
    for (const tid of tids) {
      checkpoint();
      if (isIoUringWorker(pid, tid)) {
        refuseIoUring(pid);
        throw new IoUringError({ pid, workers: [{ tid, comm: readStat(pid, tid).comm }] });
      }
      if (deadline !== undefined && Date.now() > deadline) throw new FreezeTimeoutError(rootPid, timeoutMs!);
      const within = deadline === undefined ? undefined : Math.max(0, deadline - Date.now());
      const together = tid !== pid && task.tracees.size > 0;
      let tracee: Tracee | undefined;
      try {
        tracee = gone(tid === rootPid, () => seizeUnlessExiting(tid, options, !together, within));
      } catch (e) {
        if (e instanceof WaitTimeoutError && deadline !== undefined) throw new FreezeTimeoutError(rootPid, timeoutMs!, tid);
        throw e;
      }
      if (tracee && together) {
        task.tracees.set(tid, tracee); // thawed with the others should anything fail
        waiting.push(tracee);
        continue;
      }
      if (!tracee) {
        walk.exits++;
        // exited under our hands: a process that became a zombie is dumped as one
        if (tid === pid && task.tracees.size === 0) {
          const st = gone(false, () => readStat(pid));
          if (st?.state === 'Z') task.zombie = { waitStatus: st.exitCode };
          return false;
        }
        continue;
      }
      task.tracees.set(tid, tracee);
      if (STOP_SIGNALS.includes(WaitStatus.stopSig(tracee.firstStop))) task.stopped = true;
    }
    for (const tracee of waiting) {
      const within = deadline === undefined ? undefined : Math.max(0, deadline - Date.now());
      let stopped: boolean | undefined;
      try {
        stopped = gone(false, () => (tracee.awaitFirstStop(within), true));
      } catch (e) {
        if (e instanceof WaitTimeoutError && deadline !== undefined) {
          task.tracees.delete(tracee.tid); // let go by awaitFirstStop; the kernel detaches it when amber exits
          throw new FreezeTimeoutError(rootPid, timeoutMs!, tracee.tid);
        }
        throw e;
      }
      if (stopped) {
        if (STOP_SIGNALS.includes(WaitStatus.stopSig(tracee.firstStop))) task.stopped = true;
      } else {
        task.tracees.delete(tracee.tid); // exited under our hands: not part of the dump
        walk.exits++;
      }
    }
  }
}

/**
 * PTRACE_SEIZE fails with EPERM on a task that is already exiting: that is a vanished task. On one
 * that another process traces it fails the same way: that one is named. Without `wait`, the
 * interrupt's stop is left to awaitFirstStop().
 */
function seizeUnlessExiting(tid: number, options: number, wait = true, stopWithinMs?: number): Tracee | undefined {
  // with the filters suspended, whether the thread has one matters not (nor its status read)
  if (!(options & PTRACE_O.SUSPEND_SECCOMP)) {
    const seccomp = gone(false, () => Number(parseStatus(procRead(tid, 'status')).get('Seccomp') ?? 0));
    if (seccomp) checkSeccompSuspendable(tid, seccomp, options, 'dump');
  }
  try {
    return wait ? Tracee.seize(tid, options, stopWithinMs) : Tracee.seizeInterrupting(tid, options);
  } catch (e) {
    if (e instanceof KernelError && e.errnoName === 'EPERM') {
      const st = gone(false, () => readStat(tid));
      if (!st || st.state === 'Z' || st.state === 'X') return undefined;
      const tracer = tracerOf(tid);
      if (tracer) throw new AlreadyTracedError(tid, tracer, gone(false, () => readStat(tracer).comm) ?? '?');
    }
    throw e;
  }
}

/** A tracer other than amber already holds pid: ptrace would refuse it anyway, so say who. */
export function checkNotTraced(pid: number): void {
  const tracer = tracerOf(pid);
  if (tracer && tracer !== process.pid) throw new AlreadyTracedError(pid, tracer, gone(false, () => readStat(tracer).comm) ?? '?');
}

function tracerOf(tid: number): number {
  const status = gone(false, () => parseStatus(procRead(tid, 'status')));
  return Number(status?.get('TracerPid') ?? 0);
}

/**
 * Runs a look at a task that may vanish while the tree is still moving: a task or thread that
 * exits before it is frozen is simply not part of the dump (the root must stay, though).
 */
function gone<T>(mustExist: boolean, fn: () => T): T | undefined {
  try {
    return fn();
  } catch (e) {
    const vanished =
      e instanceof TaskGoneError ||
      (e instanceof KernelError && e.errnoName === 'ESRCH') ||
      (e instanceof ProcError && e.message.includes('ENOENT')) ||
      (e as NodeJS.ErrnoException).code === 'ENOENT';
    if (vanished && !mustExist) return undefined;
    throw e;
  }
}

export function thawTree(tasks: FrozenTask[]): void {
  for (const t of tasks) for (const tr of t.tracees.values()) tr.detachQuietly();
}
