// Generated from core/proto/fs.proto by `npm run protos` (scripts/protos.js): do not edit.

export interface FsEntry {
  /** both are ids of file descriptions in files.img */
  cwdId: number;
  rootId: number;
  umask?: number;
}
