// Generated from core/proto/ids.proto by `npm run protos` (scripts/protos.js): do not edit.

/** One id per object; tasks sharing an object share its id. */
export interface TaskKobjIdsEntry {
  vmId: number;
  filesId: number;
  fsId: number;
  sighandId: number;
  pidNsId?: number;
  netNsId?: number;
  /** amber: set only when the task's IPC namespace is not amber's own (the nsfs inode number) */
  ipcNsId?: number;
  utsNsId?: number;
  mntNsId?: number;
  userNsId?: number;
  cgroupNsId?: number;
  timeNsId?: number;
  /**
   * amber's own: the task's SysV semaphore undo list (tasks made with CLONE_SYSVSEM share one),
   * written by the ipc plugin
   */
  amberSysvsemId?: number;
}
