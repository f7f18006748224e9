import { readIpcSysctl, writeIpcSysctl, type DumpContext, type IpcSysctl, type RestoreContext } from '@amber/core';
import { varImageName, type IpcVarEntry } from './objs-images';
import type { TreeIpcNamespace } from './namespace';

/** Each field of ipcns-var and its sysctl (kernel.sem is four numbers). */
const FIELDS: readonly [keyof IpcVarEntry, IpcSysctl][] = [
  ['msgCtlmax', 'kernel/msgmax'], ['msgCtlmnb', 'kernel/msgmnb'], ['msgCtlmni', 'kernel/msgmni'], ['autoMsgmni', 'kernel/auto_msgmni'],
  ['shmCtlmax', 'kernel/shmmax'], ['shmCtlall', 'kernel/shmall'], ['shmCtlmni', 'kernel/shmmni'], ['shmRmidForced', 'kernel/shm_rmid_forced'],
  ['mqQueuesMax', 'fs/mqueue/queues_max'], ['mqMsgMax', 'fs/mqueue/msg_max'], ['mqMsgsizeMax', 'fs/mqueue/msgsize_max'],
  ['mqMsgDefault', 'fs/mqueue/msg_default'], ['mqMsgsizeDefault', 'fs/mqueue/msgsize_default'],
];
const NEXT_IDS: readonly [keyof IpcVarEntry, IpcSysctl][] = [['msgNextId', 'kernel/msg_next_id'], ['semNextId', 'kernel/sem_next_id'], ['shmNextId', 'kernel/shm_next_id']];
const BIG = new Set<keyof IpcVarEntry>(['shmCtlmax', 'shmCtlall']);

/** The IPC sysctls of the tree's own namespace (amber's thread is in it). */
export function dumpIpcVar(ctx: DumpContext, ns: TreeIpcNamespace): void {
  if (ns.host) return;
  const e: Record<string, unknown> = { semCtls: (readIpcSysctl('kernel/sem') ?? []).map(Number) };
  for (const [field, name] of [...FIELDS, ...NEXT_IDS]) {
    const v = readIpcSysctl(name)?.[0];
    if (v === undefined) e[field] = BIG.has(field) ? 0n : 0;
    // next_id -1 (unset) is stored as absent
    else if (!(NEXT_IDS.some(([f]) => f === field) && v < 0n)) e[field] = BIG.has(field) ? v : Number(v);
  }
  ctx.store.write('ipcns-var', varImageName(ns.id), [e as unknown as IpcVarEntry]);
}

/** The limits, before any object is made in the new namespace. */
export function restoreIpcLimits(ctx: RestoreContext, nsId: number): void {
  const e = readVar(ctx, nsId);
  if (!e) return;
  if (e.semCtls.length === 4) writeIpcSysctl('kernel/sem', e.semCtls.map(BigInt));
  for (const [field, name] of FIELDS) {
    const v = e[field];
    // auto_msgmni is a relic that takes 0 only
    if (v !== undefined && name !== 'kernel/auto_msgmni' && readIpcSysctl(name) !== undefined) writeIpcSysctl(name, [BigInt(v as number | bigint)]);
  }
}

/** The next ids, once every object is made (making one with a chosen id uses them). */
export function restoreNextIds(ctx: RestoreContext, nsId: number): void {
  const e = readVar(ctx, nsId);
  if (!e) return;
  for (const [field, name] of NEXT_IDS) if (e[field] !== undefined) writeIpcSysctl(name, [BigInt(e[field] as number)]);
}

function readVar(ctx: RestoreContext, nsId: number): IpcVarEntry | undefined {
  return ctx.store.has(varImageName(nsId)) ? ctx.store.readOne<IpcVarEntry>('ipcns-var', varImageName(nsId)) : undefined;
}
