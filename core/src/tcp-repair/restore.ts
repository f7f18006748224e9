import { bindInet, connectInet, type InetEndpoint } from '../kernel/sockaddr-inet';
import { TCP_STATE, TCPI_OPT } from '../kernel/inet-diag';
import { shutdown, SHUT } from '../kernel/sockets';
import { REPAIR_QUEUE, roomForQueues, sendAll, TCP, TCPOPT, tcpSet, tcpSetBytes } from './kernel-calls';
import { FIN_RECEIVED, FIN_SENT, repairOff, repairOn } from './save';
import { sendFakeSegment, TH } from './fake-segment';
import type { TcpStream } from './stream';

const bit = (state: number) => 1 << state;
/** States in which the peer has acknowledged our FIN. */
const FIN_ACKED = bit(TCP_STATE.FIN_WAIT2);

function setQueueSeq(fd: number, which: number, seq: number): void {
  tcpSet(fd, TCP.REPAIR_QUEUE, which, 'TCP_REPAIR_QUEUE');
  tcpSet(fd, TCP.QUEUE_SEQ, seq | 0, 'TCP_QUEUE_SEQ');
}

function repairOptions(s: TcpStream): Buffer {
  const opts: [number, number][] = [];
  if (s.optMask & TCPI_OPT.SACK) opts.push([TCPOPT.SACK_PERM, 0]);
  if (s.optMask & TCPI_OPT.WSCALE) opts.push([TCPOPT.WINDOW, s.sndWscale + (s.rcvWscale << 16)]);
  if (s.optMask & TCPI_OPT.TIMESTAMPS) opts.push([TCPOPT.TIMESTAMP, 0]);
  opts.push([TCPOPT.MAXSEG, s.mssClamp]);
  const buf = Buffer.alloc(8 * opts.length);
  opts.forEach(([code, val], i) => { buf.writeUInt32LE(code, 8 * i); buf.writeUInt32LE(val >>> 0, 8 * i + 4); });
  return buf;
}

/** Our FIN back into the send queue: as sent and acknowledged (the send queue selected), or still to send. */
function finIntoSendQueue(fd: number, acked: boolean): void {
  if (acked) tcpSet(fd, TCP.REPAIR_QUEUE, REPAIR_QUEUE.SEND, 'TCP_REPAIR_QUEUE');
  shutdown(fd, SHUT.WR);
  if (acked) tcpSet(fd, TCP.REPAIR_QUEUE, REPAIR_QUEUE.NONE, 'TCP_REPAIR_QUEUE');
}

/**
 * Rebuilds a saved connection in fd, a new TCP socket of amber's of the same family: in repair
 * mode the socket is bound to the old local address and "connected" to the peer without a
 * packet, takes the old sequence numbers, options, window and timestamp clock, and gets both
 * queues back (the part of the send queue the peer had been sent as sent, the rest as new data).
 * The socket is left in repair mode: repairOff() makes it live, once the caller is ready.
 */
export function restoreTcpStream(fd: number, s: TcpStream, local: InetEndpoint, peer: InetEndpoint): void {
  const mstate = bit(s.state);
  repairOn(fd);
  // repair mode forces address reuse: the old port may still be held by a listener or TIME_WAIT
  bindInet(fd, local);
  // rcv_nxt and write_seq count a FIN; the queues are rebuilt without it, which adds it back below
  const inqSeq = mstate & FIN_RECEIVED ? s.inqSeq - 1 : s.inqSeq;
  const outqSeq = mstate & FIN_SENT ? s.outqSeq - 1 : s.outqSeq;
  setQueueSeq(fd, REPAIR_QUEUE.RECV, (inqSeq - s.inqLen) >>> 0);
  setQueueSeq(fd, REPAIR_QUEUE.SEND, (outqSeq - s.outqLen) >>> 0);
  connectInet(fd, peer);
  tcpSetBytes(fd, TCP.REPAIR_OPTIONS, repairOptions(s), 'TCP_REPAIR_OPTIONS');
  if (s.timestamp !== undefined) tcpSet(fd, TCP.TIMESTAMP, s.timestamp | 0, 'TCP_TIMESTAMP');

  roomForQueues(fd, s.inqLen, s.outqLen);
  if (s.inqLen) {
    tcpSet(fd, TCP.REPAIR_QUEUE, REPAIR_QUEUE.RECV, 'TCP_REPAIR_QUEUE');
    sendAll(fd, s.inq, 'receive queue');
  }
  const sent = s.outqLen - s.unsqLen;
  if (sent) {
    tcpSet(fd, TCP.REPAIR_QUEUE, REPAIR_QUEUE.SEND, 'TCP_REPAIR_QUEUE');
    sendAll(fd, s.outq.subarray(0, sent), 'send queue');
  }
  if (s.unsqLen) {
    // never sent to the peer: queued as ordinary data, which the kernel sends once out of repair
    repairOff(fd, false);
    sendAll(fd, s.outq.subarray(sent), 'send queue (unsent)');
    repairOn(fd);
  }
  tcpSet(fd, TCP.REPAIR_QUEUE, REPAIR_QUEUE.NONE, 'TCP_REPAIR_QUEUE');

  if (s.window) {
    const w = s.window;
    const received = mstate & FIN_RECEIVED ? 1 : 0;
    const buf = Buffer.alloc(20);
    [w.sndWl1, w.sndWnd, w.maxWindow, w.rcvWnd + received, w.rcvWup - received].forEach((v, i) => buf.writeUInt32LE(v >>> 0, 4 * i));
    tcpSetBytes(fd, TCP.REPAIR_WINDOW, buf, 'TCP_REPAIR_WINDOW');
  }

  // FINs: ours by shutdown() in repair mode; the peer's by a segment made to look like the peer's
  const window = s.window ? Math.min(0xffff, s.window.sndWnd >>> s.sndWscale) : 0xffff;
  const fake = (flags: number, ack: number) => sendFakeSegment({ from: peer, to: local, seq: inqSeq, ack: ack >>> 0, flags, window });
  if (mstate & (bit(TCP_STATE.FIN_WAIT1) | bit(TCP_STATE.FIN_WAIT2) | bit(TCP_STATE.CLOSING))) finIntoSendQueue(fd, (mstate & FIN_ACKED) !== 0);
  if (mstate & FIN_RECEIVED) fake(TH.FIN | TH.ACK, outqSeq - s.outqLen);
  if (mstate & bit(TCP_STATE.LAST_ACK)) finIntoSendQueue(fd, false);
  // the peer's acknowledgement of our FIN (outqSeq + 1 counts it again)
  if (mstate & FIN_ACKED) fake(TH.ACK, outqSeq + 1 - s.outqLen);
}
