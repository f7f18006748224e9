// Generated from core/proto/pstree.proto by `npm run protos` (scripts/protos.js): do not edit.

export interface PstreeEntry {
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  /** thread ids, the leader's own id included */
  threads: number[];
}
