import { constants } from 'node:os';
import { AmberError, IPC, together, readIpcSysctl, SEM, SEMVMX, semValues, type DumpContext, type DumpTask, type RestoreTask, type SemSetState } from '@amber/core';

// No kernel interface shows a process's SEM_UNDO adjustments (semadj). They are read here by
// probing: an injected semop, in a task that holds the undo list, whose operations would push an
// adjustment past the kernel's bound (±32767, SEMAEM) exactly when it exceeds a threshold. Each
// probe ends with an operation that must block, with IPC_NOWAIT: so every probe fails, ERANGE
// (past the bound) or EAGAIN (within), and a failed semop changes nothing — the kernel applies a
// semop's operations one by one in its slow path (several on one semaphore) and undoes them all,
// values and adjustments, before it returns. A failed or interrupted dump leaves every list as it
// was. The one trace a probe leaves: an all-zero entry for the set in the list (semop makes the
// entry before it checks anything), which adds nothing when the process exits.

export class SemUndoError extends AmberError {}

const { ERANGE, EAGAIN, EACCES, EINVAL, EIDRM } = constants.errno;
const SEMAEM = SEMVMX;

export interface SemOp {
  num: number;
  op: number;
  undo: boolean;
}

/** Operations that take semaphore num from value v to 0 and add `add` (>= 0 or <= 0) to its adjustment, never leaving [0, SEMVMX]. */
function shiftOps(num: number, v: number, add: number): SemOp[] {
  const ops: SemOp[] = v ? [{ num, op: -v, undo: false }] : [];
  for (let left = Math.abs(add); left > 0; ) {
    const c = Math.min(left, SEMVMX);
    left -= c;
    // an operation op with SEM_UNDO adds -op to the adjustment
    if (add > 0) ops.push({ num, op: c, undo: false }, { num, op: -c, undo: true });
    else ops.push({ num, op: c, undo: true }, { num, op: -c, undo: false });
  }
  return ops;
}

export function encodeSemOps(ops: SemOp[]): Buffer {
  const b = Buffer.alloc(6 * ops.length);
  ops.forEach((o, i) => {
    b.writeUInt16LE(o.num, 6 * i);
    b.writeInt16LE(o.op, 6 * i + 2);
    b.writeInt16LE(IPC.NOWAIT | (o.undo ? SEM.UNDO : 0), 6 * i + 4);
  });
  return b;
}

/** A probe's answer: true when it hit the bound, false when it reached its blocking end. */
function probe(task: DumpTask, semid: number, ops: SemOp[]): boolean {
  const last = ops.length ? ops[ops.length - 1].num : 0;
  const all = [...ops, { num: last, op: -32768, undo: false }];
  task.remote.resetData();
  const r = task.remote.sysRaw.semop(semid, encodeSemOps(all), all.length);
  task.remote.resetData();
  if (r === -ERANGE) return true;
  if (r === -EAGAIN) return false;
  if (r === 0) throw new SemUndoError(`pid ${task.pid}: a probe of sem set id ${semid} succeeded, which it never should: values may have changed`);
  throw new ProbeRefused(-r);
}

class ProbeRefused extends Error {
  constructor(readonly errno: number) {
    super(`errno ${errno}`);
  }
}

/**
 * The adjustments of every semaphore of a set in the undo list `task` holds; undefined when all
 * are 0 (or the set is gone, or the task may not alter it: it can hold no adjustment then, unless
 * the set's mode changed since). 'changing': a process outside the tree kept operating on the set
 * while it was probed, so the answers cannot be trusted.
 */
export function readAdjustments(task: DumpTask, set: SemSetState): number[] | undefined | 'changing' {
  const semopm = Number(readIpcSysctl('kernel/sem')?.[2] ?? 32n);
  for (let attempt = 0; attempt < 3; attempt++) {
    const values = semValues(set.id, set.nsems);
    try {
      const adj = probeSet(task, set, values, semopm);
      // a process outside the tree may have operated on the set meanwhile: then probe again
      if (semValues(set.id, set.nsems).every((v, i) => v === values[i])) return adj;
    } catch (e) {
      if (e instanceof ProbeRefused) {
        if (e.errno === EACCES || e.errno === EINVAL || e.errno === EIDRM) return undefined;
        throw new SemUndoError(`pid ${task.pid}: probing its SEM_UNDO adjustments on sem set id ${set.id} failed: errno ${e.errno}`);
      }
      throw e;
    }
  }
  return 'changing';
}

function probeSet(task: DumpTask, set: SemSetState, values: number[], semopm: number): number[] | undefined {
  // 0 or not, for many semaphores at once: x > 0 and x < 0 for each, in one semop as long as it fits
  const perSem = 8;
  const nonZero: number[] = [];
  for (let first = 0; first < set.nsems; ) {
    const count = Math.max(1, Math.min(set.nsems - first, Math.floor((semopm - 1) / perSem)));
    const ops: SemOp[] = [];
    for (let n = first; n < first + count; n++) ops.push(...shiftOps(n, values[n], SEMAEM), ...shiftOps(n, 0, -2 * SEMAEM - 1));
    if (probe(task, set.id, ops)) {
      for (let n = first; n < first + count; n++) if (isNonZero(task, set.id, n, values[n])) nonZero.push(n);
    }
    first += count;
  }
  if (!nonZero.length) return undefined;
  const adj = new Array<number>(set.nsems).fill(0);
  for (const n of nonZero) adj[n] = search(task, set.id, n, values[n]);
  return adj;
}

/** Probes "semadj > t": adding SEMAEM - t passes the bound exactly then. */
const above = (task: DumpTask, semid: number, n: number, v: number, t: number) => probe(task, semid, shiftOps(n, v, SEMAEM - t));

function isNonZero(task: DumpTask, semid: number, n: number, v: number): boolean {
  return above(task, semid, n, v, 0) || !above(task, semid, n, v, -1);
}

function search(task: DumpTask, semid: number, n: number, v: number): number {
  let [lo, hi] = [-SEMAEM - 1, SEMAEM];
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    if (above(task, semid, n, v, mid)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Makes sure the task has an undo list of its own or shared (semop with SEM_UNDO on an id that
 * does not exist makes the list, then fails): without one, kcmp(KCMP_SYSVSEM) finds two tasks
 * that have none "equal", as if they shared one.
 */
export function ensureUndoLists(tasks: readonly DumpTask[], missingId: number): void {
  // one stop of each task, all of them together (their scratch areas are their own)
  together(tasks, (task) => {
    task.remote.resetData();
    const ran = task.remote.beginQueryMany([{ name: 'semop', args: [missingId, encodeSemOps([{ num: 0, op: 0, undo: true }]), 1] }]);
    return () => {
      const [r] = ran();
      task.remote.resetData();
      if (r !== -EINVAL) throw new SemUndoError(`pid ${task.pid}: semop on the unused sem id ${missingId} gave ${r}, not EINVAL`);
    };
  });
}

/**
 * Gives the restored task's undo list the adjustments, leaving every value as it is: each step
 * raises and lowers one semaphore by the same amount, one of the two with SEM_UNDO.
 */
export function applyAdjustments(task: RestoreTask, semid: number, adjustments: readonly number[], values: readonly number[]): void {
  adjustments.forEach((want, n) => {
    const v = values[n];
    for (let left = Math.abs(want); left > 0; ) {
      // at most half the range per step: either v + c or v - c stays within [0, SEMVMX]
      const c = Math.min(left, 16383);
      left -= c;
      const up = v + c <= SEMVMX;
      // adding c to semadj takes an operation -c with SEM_UNDO; subtracting, +c
      const undoOp = want > 0 ? -c : c;
      const ops: SemOp[] = want > 0 === up
        ? [{ num: n, op: -undoOp, undo: false }, { num: n, op: undoOp, undo: true }]
        : [{ num: n, op: undoOp, undo: true }, { num: n, op: -undoOp, undo: false }];
      task.remote.resetData();
      task.remote.sys.with(`sem set id ${semid}: SEM_UNDO adjustment of semaphore ${n}`).semop(semid, encodeSemOps(ops), ops.length);
      task.remote.resetData();
    }
  });
}

export type { DumpContext };
