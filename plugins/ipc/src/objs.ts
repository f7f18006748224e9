import { removeIpcObject, type CompareContext, type Difference, type DumpContext, type RestoreContext } from '@amber/core';
import { dumpIpcVar, restoreIpcLimits, restoreNextIds } from './ipc-var';
import { checkMsgIdsFree, compareMsgQueues, dumpMsgQueues, restoreMsgQueues } from './msg';
import { mqueueDumpState, mqueueRestoreState, unlinkQueue } from './mqueue';
import { restoresIntoHostNamespace, treeIpcNamespace, type TreeIpcNamespace } from './namespace';
import { checkSemIdsFree, compareSemSets, dumpSemSets, restoreSemSets } from './sem';
import type { IpcCreated } from './objs-common';
import type { IpcMsgEntry, IpcSemEntry } from './objs-images';

// Message queues, semaphore sets and the namespace's sysctls, for the plugin's dump, restore and
// compare (index.ts); amber's thread is in the tree's IPC namespace (inIpcnsOf) while they run.

/** The tree's IPC namespace, found once per dump. */
export const dumpNamespace = (ctx: DumpContext): TreeIpcNamespace => ctx.state('ipc:ns', () => treeIpcNamespace(ctx.tasks));

interface DumpedObjects {
  msg: IpcMsgEntry[];
  sem: IpcSemEntry[];
}

export function dumpObjects(ctx: DumpContext, ns: TreeIpcNamespace): void {
  dumpIpcVar(ctx, ns);
  const msg = dumpMsgQueues(ctx, ns);
  const sem = dumpSemSets(ctx, ns);
  ctx.state<DumpedObjects>('ipc:dumped-objects', () => ({ msg, sem }));
}

/**
 * A complete dump that ends a tree of the host's namespace takes its queues and sets with it, and
 * unlinks its named POSIX queues: they would outlive it, and, taken, keep the restore from
 * making them again. (A namespace of its own goes with the tree.)
 */
export function releaseDumpedObjects(ctx: DumpContext, succeeded: boolean): void {
  if (!succeeded || ctx.options.leaveRunning || ctx.options.preDump || !dumpNamespace(ctx).host) return;
  const dumped = ctx.state<DumpedObjects>('ipc:dumped-objects', () => ({ msg: [], sem: [] }));
  for (const e of dumped.msg) removeIpcObject('msg', e.desc.id);
  for (const e of dumped.sem) removeIpcObject('sem', e.desc.id);
  for (const name of mqueueDumpState(ctx).names) unlinkQueue(name);
}

/** Refuses a taken id or key before anything is made; sets the new namespace's limits. */
export function prepareObjects(ctx: RestoreContext, nsId: number): void {
  checkMsgIdsFree(ctx, nsId);
  checkSemIdsFree(ctx, nsId);
  restoreIpcLimits(ctx, nsId);
}

const createdOf = (ctx: RestoreContext) => ctx.state<{ host?: boolean; objects: IpcCreated[] }>('ipc:created', () => ({ objects: [] }));

export function restoreObjects(ctx: RestoreContext, nsId: number): void {
  const created = createdOf(ctx);
  created.host = restoresIntoHostNamespace(ctx);
  restoreMsgQueues(ctx, nsId, created.objects);
  restoreSemSets(ctx, nsId, created.objects);
  restoreNextIds(ctx, nsId);
}

/** A failed restore removes what it made in the host's namespace (a new namespace dies with its tasks). */
export function undoObjects(ctx: RestoreContext): void {
  const created = createdOf(ctx);
  if (!created.host) return;
  for (const o of created.objects) removeIpcObject(o.kind, o.id);
  for (const name of mqueueRestoreState(ctx).created) unlinkQueue(name);
}

export function compareObjects(ctx: CompareContext, nsId: number): Difference[] {
  return [...compareMsgQueues(ctx, nsId), ...compareSemSets(ctx, nsId)];
}
