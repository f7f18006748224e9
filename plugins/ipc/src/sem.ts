import {
  AmberError, createWithId, KernelError, listSemSets, SEMVMX, semLastPid, semValues, setIpcPerm, setSemValues,
  type CompareContext, type Difference, type DumpContext, type DumpTask, type RestoreContext, type SemSetState,
} from '@amber/core';
import { semImageName, type IpcSemEntry, type SemUndoEntry } from './objs-images';
import { describeDesc, descOf, diffDesc, type IpcCreated } from './objs-common';
import { applyAdjustments, encodeSemOps, ensureUndoLists, readAdjustments } from './sem-undo';
import type { TreeIpcNamespace } from './namespace';

export class SemSetError extends AmberError {}

/** A sem id no set has: probing it makes a task's undo list, nothing else. */
const UNUSED_SEM_ID = 0x7fffffff;

function valuesBlob(values: number[]): Buffer {
  const b = Buffer.alloc(2 * values.length);
  values.forEach((v, i) => b.writeUInt16LE(v, 2 * i));
  return b;
}

function valuesOf(blob: Buffer | undefined, nsems: number): number[] {
  return Array.from({ length: nsems }, (_, i) => blob?.readUInt16LE(2 * i) ?? 0);
}

/**
 * The undo lists of the tree, one per group of tasks sharing one (CLONE_SYSVSEM), each probed
 * through one of its tasks: ids-<pid>.amber_sysvsem_id says who shares which. A thread with a
 * list of its own (made without CLONE_SYSVSEM) is refused: amber restores threads sharing their
 * process's, as pthreads have them. Two processes that share a list must be parent and child.
 */
function undoLists(ctx: DumpContext): Map<number, DumpTask> {
  if (listSemSets().some((s) => s.id === UNUSED_SEM_ID)) throw new SemSetError(`sem id ${UNUSED_SEM_ID} is in use: amber needs it unused to probe undo lists`);
  const lists = new Map<number, DumpTask>();
  const byPid = new Map(ctx.tasks.map((t) => [t.pid, t]));
  ensureUndoLists(ctx.tasks, UNUSED_SEM_ID);
  for (const t of ctx.tasks) {
    const id = ctx.objects.identify('SYSVSEM', t.pid).id;
    for (const tid of t.threads) {
      if (tid !== t.pid && !ctx.objects.same('SYSVSEM', t.pid, tid)) {
        throw new SemSetError(`pid ${t.pid} thread ${tid} has a SysV undo list of its own (made without CLONE_SYSVSEM): amber restores threads sharing their process's`);
      }
    }
    t.ids.amberSysvsemId = id;
    const first = lists.get(id);
    if (!first) lists.set(id, t);
    else if (byPid.get(t.stat.ppid)?.ids.amberSysvsemId !== id) {
      throw new SemSetError(`pids ${first.pid} and ${t.pid} share a SysV undo list but ${t.pid}'s parent does not: amber can only restore one shared through CLONE_SYSVSEM by a parent`);
    }
  }
  return lists;
}

/**
 * The sets of the tree and its undo adjustments on them. In its own namespace, every set; in the
 * host's, the sets where a task of the tree holds an adjustment, or was the last to operate on a
 * semaphore (sempid).
 */
export function dumpSemSets(ctx: DumpContext, ns: TreeIpcNamespace): IpcSemEntry[] {
  const pids = new Set(ctx.tasks.map((t) => t.pid));
  const lists = undoLists(ctx);
  let adjustments = 0;
  const entries: IpcSemEntry[] = [];
  const blobs: Buffer[] = [];
  for (const set of listSemSets()) {
    // a set amber may not read (another user's, amber not root) cannot be the tree's in the host's namespace
    if (ns.host && !readable(set)) continue;
    const held: SemUndoEntry[] = [];
    const ours = !ns.host || lastOperatorIn(set, pids);
    for (const [sysvsemId, task] of lists) {
      const adj = readAdjustments(task, set);
      if (adj === 'changing') {
        // a busy set of the host's that is not the tree's by its last operators is passed over, not a reason to fail
        if (ours) throw new SemSetError(`sem set id ${set.id} keeps changing while amber probes pid ${task.pid}'s undo adjustments on it (a process outside the tree operates on it): they cannot be read`);
        ctx.log.warn(`sem set id ${set.id} kept changing while amber probed pid ${task.pid}'s undo adjustments on it: taken as none (its last operators are outside the tree)`);
      } else if (adj) held.push({ sysvsemId, pid: task.pid, adjustments: adj });
    }
    if (!ours && !held.length) continue;
    const values = semValues(set.id, set.nsems);
    const sempids = Array.from({ length: set.nsems }, (_, n) => semLastPid(set.id, n));
    entries.push({ desc: descOf(set), nsems: set.nsems, amberUndo: held, amberSempids: sempids });
    blobs.push(valuesBlob(values));
    adjustments += held.length;
    ctx.count('sem sets', 1);
  }
  if (entries.length) ctx.store.write('ipcns-sem', semImageName(ns.id), entries, { blobs });
  ctx.count('sem undo lists held', adjustments);
  return entries;
}

function readable(set: SemSetState): boolean {
  try {
    semValues(set.id, set.nsems);
    return true;
  } catch (e) {
    if (e instanceof KernelError && e.errnoName === 'EACCES') return false;
    throw e;
  }
}

function lastOperatorIn(set: SemSetState, pids: ReadonlySet<number>): boolean {
  for (let n = 0; n < set.nsems; n++) if (pids.has(semLastPid(set.id, n))) return true;
  return false;
}

export function checkSemIdsFree(ctx: RestoreContext, nsId: number): void {
  if (!ctx.store.has(semImageName(nsId))) return;
  const live = listSemSets();
  for (const e of ctx.store.read<IpcSemEntry>('ipcns-sem', semImageName(nsId)).entries) {
    const taken = live.find((s) => s.id === e.desc.id || (e.desc.key !== 0 && s.key >>> 0 === e.desc.key));
    if (taken) {
      throw new SemSetError(
        `sem set ${describeDesc(e.desc)} cannot be restored: ${taken.id === e.desc.id ? 'its id' : 'its key'} is taken by sem set id ${taken.id} ` +
          `(key 0x${(taken.key >>> 0).toString(16)}, ${taken.nsems} semaphores): remove it (ipcrm -s ${taken.id}) or restore elsewhere`,
      );
    }
  }
}

/** Makes every set again with its id, key, owners, mode and values, then each undo list's adjustments in one of its tasks. */
export function restoreSemSets(ctx: RestoreContext, nsId: number, created: IpcCreated[]): void {
  if (!ctx.store.has(semImageName(nsId))) return;
  const image = ctx.store.read<IpcSemEntry>('ipcns-sem', semImageName(nsId));
  image.entries.forEach((e, i) => {
    const { desc } = e;
    createWithId({ kind: 'sem', key: desc.key, id: desc.id, mode: desc.mode & 0o777, cuid: desc.cuid, cgid: desc.cgid, nsems: e.nsems });
    created.push({ kind: 'sem', id: desc.id });
    setIpcPerm('sem', desc.id, desc);
    const v = valuesOf(image.blobs[i], e.nsems);
    setSemValues(desc.id, v);
    for (const u of e.amberUndo) applyUndo(ctx, desc.id, u, v);
    touchAsLastOperators(ctx, desc.id, e.amberSempids, v);
  });
}

/**
 * The last task to operate on each semaphore (sempid), when in the tree, operates on it once more:
 * up and down again in one semop, which changes no value and no adjustment (the host's namespace
 * tells the tree's sets by sempid).
 */
function touchAsLastOperators(ctx: RestoreContext, semid: number, sempids: readonly number[], values: readonly number[]): void {
  for (const task of ctx.tasks) {
    const ops = sempids.flatMap((pid, n) => {
      if (pid !== task.pid) return [];
      const up = values[n] < SEMVMX;
      return [{ num: n, op: up ? 1 : -1, undo: false }, { num: n, op: up ? -1 : 1, undo: false }];
    });
    if (!ops.length) continue;
    task.remote.resetData();
    task.remote.sys.with(`sem set id ${semid}: its last operator`).semop(semid, encodeSemOps(ops), ops.length);
    task.remote.resetData();
  }
}

function applyUndo(ctx: RestoreContext, semid: number, u: SemUndoEntry, values: number[]): void {
  const task = ctx.tasks.find((t) => t.pid === u.pid);
  if (!task) throw new SemSetError(`sem set id ${semid}: pid ${u.pid}, which held SEM_UNDO adjustments on it, is not in the restored tree`);
  applyAdjustments(task, semid, u.adjustments, values);
}

export function compareSemSets(ctx: CompareContext, nsId: number): Difference[] {
  if (!ctx.store.has(semImageName(nsId))) return [];
  const image = ctx.store.read<IpcSemEntry>('ipcns-sem', semImageName(nsId));
  const live = new Map(listSemSets().map((s) => [s.id, s]));
  const out: Difference[] = [];
  const pid = ctx.pids[0];
  image.entries.forEach((e, i) => {
    const what = `sem set ${describeDesc(e.desc)}`;
    const s = live.get(e.desc.id);
    if (!s) return void out.push({ plugin: 'ipc', pid, what, expected: 'present', actual: 'missing' });
    const diff = (field: string, expected: string, actual: string) => void (expected !== actual && out.push({ plugin: 'ipc', pid, what: `${what}: ${field}`, expected, actual }));
    diffDesc(e.desc, s, diff);
    diff('semaphores', String(e.nsems), String(s.nsems));
    diff('values', valuesOf(image.blobs[i], e.nsems).join(' '), semValues(s.id, s.nsems).join(' '));
  });
  return out;
}
