import { AmberError } from '../kernel/errors';
import { Tracee } from '../ptrace/tracee';
import { listChildren, listThreads } from './proc';
import { existsSync } from 'node:fs';

export class NoSuchProcessError extends AmberError {
  constructor(readonly pid: number) {
    super(`pid ${pid}: no such process`);
  }
}

export interface FrozenTask {
  pid: number;
  /** Every thread, the main one (tid == pid) first. */
  tracees: Map<number, Tracee>;
}

/**
 * Freezes a process tree with PTRACE_SEIZE + PTRACE_INTERRUPT on every thread. Threads and
 * children created while we walk are caught by walking again until a pass finds nothing new.
 */
export function freezeTree(rootPid: number, options = 0): FrozenTask[] {
  if (!existsSync(`/proc/${rootPid}`)) throw new NoSuchProcessError(rootPid);
  const tasks = new Map<number, FrozenTask>();
  try {
    for (let pass = 0; ; pass++) {
      let found = false;
      const queue = [rootPid];
      while (queue.length) {
        const pid = queue.shift()!;
        let task = tasks.get(pid);
        if (!task) tasks.set(pid, (task = { pid, tracees: new Map() }));
        for (const tid of listThreads(pid)) {
          if (task.tracees.has(tid)) continue;
          task.tracees.set(tid, Tracee.seize(tid, options));
          found = true;
        }
        queue.push(...listChildren(pid));
      }
      if (!found) break;
      if (pass > 1000) throw new AmberError(`pid ${rootPid}: the tree keeps changing; could not freeze it`);
    }
  } catch (e) {
    thawTree([...tasks.values()]);
    throw e;
  }
  return [...tasks.values()].map((t) => ({
    pid: t.pid,
    tracees: new Map([...t.tracees].sort(([a], [b]) => (a === t.pid ? -1 : b === t.pid ? 1 : a - b))),
  }));
}

export function thawTree(tasks: FrozenTask[]): void {
  for (const t of tasks) for (const tr of t.tracees.values()) tr.detachQuietly();
}
