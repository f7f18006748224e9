/**
 * What TCP repair saves of one connection: the fields of CRIU's tcp_stream_entry, and both
 * queues' bytes. Sequence numbers are the kernel's: inqSeq = rcv_nxt, outqSeq = write_seq.
 */
export interface TcpStream {
  /** TCP_STATE of the connection when saved. */
  state: number;
  inqLen: number;
  inqSeq: number;
  /** Sent-not-acknowledged plus unsent bytes. */
  outqLen: number;
  outqSeq: number;
  /** The part of outq not sent yet. */
  unsqLen: number;
  /** TCPI_OPT_* the connection negotiated. */
  optMask: number;
  sndWscale: number;
  rcvWscale: number;
  mssClamp: number;
  /** TCP_TIMESTAMP (the clock plus this socket's offset), when timestamps are on. */
  timestamp?: number;
  window?: TcpWindow;
  inq: Buffer;
  outq: Buffer;
}

/** struct tcp_repair_window. */
export interface TcpWindow {
  sndWl1: number;
  sndWnd: number;
  maxWindow: number;
  rcvWnd: number;
  rcvWup: number;
}
