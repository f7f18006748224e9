// Generated from plugins/mm/proto/shmem.proto by `npm run protos` (scripts/protos.js): do not edit.

export interface ShmemObject {
  id: number;
  /** 1 shared anonymous memory, 2 memfd, 3 deleted file */
  kind: number;
  size: bigint;
  /** memfd name (without "memfd:"), or the deleted file's path */
  name?: string;
  /** F_GET_SEALS of a memfd */
  seals?: number;
  /** st_mode of a deleted file */
  mode?: number;
  pagesId: number;
  /** owner of a deleted file */
  uid?: number;
  gid?: number;
  /** st_ino at dump time: the object's identity across plugins (a memfd's fds, in fs) and tasks */
  ino?: bigint;
  /** st_dev at dump time (a deleted file's identity needs it) */
  dev?: bigint;
}
