import { AmberError } from '../kernel/errors';
import { TCP_INFO_OFFSET, TCP_STATE, TCPI_OPT, tcpStateName } from '../kernel/inet-diag';
import { notSentYet, peekQueue, queuedToRead, queuedToSend, REPAIR, REPAIR_QUEUE, TCP, tcpGet, tcpGetBytes, tcpSet } from './kernel-calls';
import type { TcpStream, TcpWindow } from './stream';

const bit = (state: number) => 1 << state;
/** States whose send queue ends with our FIN (which is no data, but counts one sequence number). */
export const FIN_SENT = bit(TCP_STATE.FIN_WAIT1) | bit(TCP_STATE.FIN_WAIT2) | bit(TCP_STATE.CLOSING) | bit(TCP_STATE.LAST_ACK) | bit(TCP_STATE.CLOSE);
/** States whose peer's FIN was received (rcv_nxt counts it). */
export const FIN_RECEIVED = bit(TCP_STATE.CLOSE_WAIT) | bit(TCP_STATE.LAST_ACK) | bit(TCP_STATE.CLOSING);
/** What TCP repair can save. */
const SAVABLE = bit(TCP_STATE.ESTABLISHED) | FIN_SENT | FIN_RECEIVED;

export class TcpRepairError extends AmberError {
  constructor(readonly fd: number, what: string) {
    super(`TCP repair of fd ${fd}: ${what}`);
  }
}

/**
 * Puts the socket in repair mode: from now on it sends nothing by itself, and closing it (the
 * dumped task dying) neither resets nor finishes the connection — the peer sees nothing. Needs
 * CAP_NET_ADMIN in the socket's network namespace; refused on a listener.
 */
export function repairOn(fd: number): void {
  tcpSet(fd, TCP.REPAIR, REPAIR.ON, 'TCP_REPAIR on');
}

/** Back to normal. `probe` lets the kernel send a window probe, which wakes a peer that waited on a zero window. */
export function repairOff(fd: number, probe = true): void {
  tcpSet(fd, TCP.REPAIR, probe ? REPAIR.OFF : REPAIR.OFF_NO_WP, 'TCP_REPAIR off');
}

function readWindow(fd: number): TcpWindow {
  const w = tcpGetBytes(fd, TCP.REPAIR_WINDOW, 20, 'TCP_REPAIR_WINDOW');
  return { sndWl1: w.readUInt32LE(0), sndWnd: w.readUInt32LE(4), maxWindow: w.readUInt32LE(8), rcvWnd: w.readUInt32LE(12), rcvWup: w.readUInt32LE(16) };
}

function queue(fd: number, which: number, len: number, what: string): { seq: number; data: Buffer } {
  tcpSet(fd, TCP.REPAIR_QUEUE, which, 'TCP_REPAIR_QUEUE');
  const seq = tcpGet(fd, TCP.QUEUE_SEQ, 'TCP_QUEUE_SEQ') >>> 0;
  return { seq, data: len ? Buffer.from(peekQueue(fd, len, what)) : Buffer.alloc(0) };
}

/**
 * Everything TCP repair knows of a connection, read from a socket already in repair mode
 * (repairOn): sequence numbers, both queues (the send queue with what was sent but not yet
 * acknowledged), the negotiated options, the window and the timestamp clock. Nothing is consumed.
 */
export function saveTcpStream(fd: number): TcpStream {
  const info = tcpGetBytes(fd, TCP.INFO, 104, 'TCP_INFO');
  const state = info.readUInt8(TCP_INFO_OFFSET.STATE);
  if (!(bit(state) & SAVABLE)) throw new TcpRepairError(fd, `the connection is ${tcpStateName(state)}, which TCP repair cannot save`);
  let outqLen = queuedToSend(fd);
  let unsqLen = notSentYet(fd);
  // our FIN sits in the send queue as one byte of no data
  if (bit(state) & FIN_SENT) {
    if (outqLen) outqLen--;
    if (unsqLen) unsqLen--;
  }
  const inqLen = queuedToRead(fd);
  const optMask = info.readUInt8(TCP_INFO_OFFSET.OPTIONS);
  const wscale = info.readUInt8(TCP_INFO_OFFSET.WSCALE);
  // in repair mode TCP_MAXSEG answers the clamp negotiated with the peer
  const mssClamp = tcpGet(fd, TCP.MAXSEG, 'TCP_MAXSEG');
  const timestamp = optMask & TCPI_OPT.TIMESTAMPS ? tcpGet(fd, TCP.TIMESTAMP, 'TCP_TIMESTAMP') >>> 0 : undefined;
  const window = readWindow(fd);
  const inq = queue(fd, REPAIR_QUEUE.RECV, inqLen, 'receive queue');
  const outq = queue(fd, REPAIR_QUEUE.SEND, outqLen, 'send queue');
  tcpSet(fd, TCP.REPAIR_QUEUE, REPAIR_QUEUE.NONE, 'TCP_REPAIR_QUEUE');
  return {
    state, inqLen, inqSeq: inq.seq, outqLen, outqSeq: outq.seq, unsqLen, optMask,
    sndWscale: optMask & TCPI_OPT.WSCALE ? wscale & 0xf : 0, rcvWscale: optMask & TCPI_OPT.WSCALE ? wscale >> 4 : 0,
    mssClamp, timestamp, window, inq: inq.data, outq: outq.data,
  };
}
