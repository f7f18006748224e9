import { ipcnsOf } from '../kernel/sysv-msg-sem';
import type { SharedObjects } from '../objects/shared-objects';

/** The ids-<pid> record: which mm, fd table, fs and signal handlers a task shares with others. */
export function kcmpIdsOf(objects: SharedObjects, pid: number) {
  return {
    vmId: objects.identify('VM', pid).id,
    filesId: objects.identify('FILES', pid).id,
    fsId: objects.identify('FS', pid).id,
    sighandId: objects.identify('SIGHAND', pid).id,
    ...ipcNsIdOf(pid),
  };
}

/** ipc_ns_id: the nsfs inode of the task's IPC namespace when it is not amber's (the restore makes a new one). */
function ipcNsIdOf(pid: number): { ipcNsId?: number } {
  const ns = ipcnsOf(pid);
  return ns === ipcnsOf('self') ? {} : { ipcNsId: Number(ns) };
}
