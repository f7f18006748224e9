// Generated from plugins/net-tcp/proto/tcp-stream.proto by `npm run protos` (scripts/protos.js): do not edit.

export interface TcpStreamEntry {
  inqLen: number;
  inqSeq: number;
  /** sent-not-acknowledged plus unsent bytes in the send queue */
  outqLen: number;
  outqSeq: number;
  /** TCPI_OPT_* bits: timestamps 1, sack 2, wscale 4 */
  optMask: number;
  sndWscale: number;
  mssClamp: number;
  rcvWscale?: number;
  timestamp?: number;
  cork?: boolean;
  nodelay?: boolean;
  /** the part of outq_len not sent yet */
  unsqLen?: number;
  sndWl1?: number;
  sndWnd?: number;
  maxWindow?: number;
  rcvWnd?: number;
  rcvWup?: number;
}
