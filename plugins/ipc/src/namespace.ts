import { statSync } from 'node:fs';
import { AmberError, type DumpTask, type RestoreContext, type TaskKobjIdsEntry } from '@amber/core';

export class IpcNamespaceError extends AmberError {}

/** The IPC namespace the dumped tree lives in. */
export interface TreeIpcNamespace {
  /** its number in the images (ipcns-*-<id>, ids-<pid>'s ipc_ns_id) */
  id: number;
  /** st_ino of /proc/PID/ns/ipc */
  ino: bigint;
  /** amber's own (the host's): the tree shares it with processes outside the tree */
  host: boolean;
}

const nsIno = (pid: number | 'self') => statSync(`/proc/${pid}/ns/ipc`, { bigint: true }).ino;

/**
 * The tree's IPC namespace. Every task must be in the root's: children in another one are
 * refused. In its own namespace the tree has every object of it; in the host's, the objects it uses.
 */
export function treeIpcNamespace(tasks: readonly DumpTask[]): TreeIpcNamespace {
  const root = tasks[0];
  const ino = nsIno(root.pid);
  for (const t of tasks.slice(1)) {
    const other = nsIno(t.pid);
    if (other !== ino) throw new IpcNamespaceError(`pid ${t.pid} is in IPC namespace ipc:[${other}], not its tree's root's (pid ${root.pid}, ipc:[${ino}]): amber dumps one IPC namespace per tree`);
  }
  const host = ino === nsIno('self');
  return { id: 1, ino, host };
}

/**
 * Whether the restore makes the tree's objects in amber's own IPC namespace (the dump's was the
 * host's: its root's ids carry no ipc_ns_id) rather than in a new one. Read from the images, not
 * from /proc/self: while objects are made, amber's thread may be inside the tree's namespace.
 */
export function restoresIntoHostNamespace(ctx: RestoreContext): boolean {
  const root = ctx.tasks[0];
  return ctx.store.readOne<TaskKobjIdsEntry>('ids', `ids-${root.pid}`).ipcNsId === undefined;
}
