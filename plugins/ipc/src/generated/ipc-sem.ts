// Generated from plugins/ipc/proto/ipc-sem.proto by `npm run protos` (scripts/protos.js): do not edit.
import type { IpcDescEntry } from './ipc-desc';

export interface IpcSemEntry {
  desc: IpcDescEntry;
  nsems: number;
  /**
   * amber's own (CRIU keeps no undo lists; crit passes over it): the SEM_UNDO adjustments held on
   * this set, one entry per undo list that holds any
   */
  amberUndo: SemUndoEntry[];
  /** amber: sempid of each semaphore, the last task to operate on it (made so again at restore when in the tree) */
  amberSempids: number[];
}

/**
 * The adjustments of one undo list (one per process, shared by the tasks made with CLONE_SYSVSEM)
 * on the set.
 */
export interface SemUndoEntry {
  /** the list: the amber_sysvsem_id of ids-<pid> of the tasks that share it */
  sysvsemId: number;
  /** a task holding it, in which the adjustments are made again */
  pid: number;
  /** semadj of every semaphore of the set, in order */
  adjustments: number[];
}
