// Generated from core/proto/stats.proto by `npm run protos` (scripts/protos.js): do not edit.

export interface DumpStatsEntry {
  freezingTime: number;
  frozenTime: number;
  memdumpTime: number;
  memwriteTime: number;
  pagesScanned: bigint;
  pagesSkippedParent: bigint;
  pagesWritten: bigint;
  irmapResolve?: number;
  pagesLazy: bigint;
  pagePipes?: bigint;
  pagePipeBufs?: bigint;
  shpagesScanned?: bigint;
  shpagesSkippedParent?: bigint;
  shpagesWritten?: bigint;
}

export interface RestoreStatsEntry {
  pagesCompared: bigint;
  pagesSkippedCow: bigint;
  forkingTime: number;
  restoreTime: number;
  pagesRestored?: bigint;
}

export interface StatsEntry {
  dump?: DumpStatsEntry;
  restore?: RestoreStatsEntry;
}
