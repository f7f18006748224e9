// Generated from plugins/ipc/proto/ipc-shm.proto by `npm run protos` (scripts/protos.js): do not edit.
import type { IpcDescEntry } from './ipc-desc';

export interface IpcShmEntry {
  desc: IpcDescEntry;
  size: bigint;
  inPagemaps?: boolean;
  hugetlbFlag?: number;
  /** amber: the N of pagemap-shmem-N.img when another memory object of the dump has the shmid's */
  amberPagemapId?: number;
  /** amber: pid of the creator (shm_cpid), to create it again in that task when it is in the tree */
  amberCpid?: number;
}
