// Generated from plugins/ipc/proto/ipc-desc.proto by `npm run protos` (scripts/protos.js): do not edit.

export interface IpcDescEntry {
  key: number;
  uid: number;
  gid: number;
  cuid: number;
  cgid: number;
  /** permission bits, and SHM_DEST (01000: removed, still attached) and SHM_LOCKED (02000) */
  mode: number;
  id: number;
}
