// Generated from core/proto/ids.proto by `npm run protos` (scripts/protos.js): do not edit.

/** One id per object; tasks sharing an object share its id. */
export interface TaskKobjIdsEntry {
  vmId: number;
  filesId: number;
  fsId: number;
  sighandId: number;
  pidNsId?: number;
  netNsId?: number;
  ipcNsId?: number;
  utsNsId?: number;
  mntNsId?: number;
  userNsId?: number;
  cgroupNsId?: number;
  timeNsId?: number;
}
